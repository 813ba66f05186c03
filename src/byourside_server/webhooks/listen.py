"""``byourside webhooks listen``: a local receiver that verifies signatures and prints events.

Handy with the simulator: point a call's ``webhookUrl`` at it (with
``BYS_WEBHOOK_ALLOW_HTTP=true`` and ``BYS_WEBHOOK_ALLOW_PRIVATE=true`` on the
server) and watch the events arrive. Requests with a bad or stale signature are
answered 401 and reported; valid ones are answered with ``--status`` (default
200; try 500 or 410 to watch retries and their end).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from byourside_server.webhooks.signing import (
    EVENT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    verify,
)

_MAX_BODY = 5 * 1024 * 1024


def make_server(
    host: str, port: int, secrets: Sequence[str], *, status: int = 200, show_body: bool = True, out: TextIO = sys.stdout
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                self._answer(413, "body too large")
                return
            raw = self.rfile.read(length)
            header = self.headers.get(SIGNATURE_HEADER, "")
            valid = verify(header, raw, secrets, time.time())
            event = self.headers.get(EVENT_HEADER, "?")
            event_id = self.headers.get(EVENT_ID_HEADER, "?")
            stamp = datetime.now().strftime("%H:%M:%S")
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = None
            call_id = body.get("callId") if isinstance(body, dict) else None
            call_status = body.get("status") if isinstance(body, dict) else None
            line = f"{stamp} {event} {event_id}"
            if call_id:
                line += f" call={call_id} status={call_status}"
            line += " signature=ok" if valid else " signature=INVALID"
            print(line, file=out, flush=True)
            if valid and show_body and body is not None:
                print(json.dumps(body, indent=2, ensure_ascii=False), file=out, flush=True)
            if valid:
                self._answer(status, "ok")
            else:
                self._answer(401, "invalid signature")

        def do_GET(self) -> None:
            self._answer(200, "byourside webhook listener: POST events here")

        def _answer(self, code: int, text: str) -> None:
            data = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve(server: ThreadingHTTPServer, err: TextIO = sys.stderr) -> int:
    host, port = server.server_address[:2]
    print(f"Listening for webhooks on http://{host}:{port}/ (Ctrl-C to stop)", file=err, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
