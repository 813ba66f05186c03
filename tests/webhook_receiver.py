"""A real HTTP webhook receiver on loopback for the webhook tests.

Runs ``ThreadingHTTPServer`` in a thread. A ``respond(request, nth)`` function
decides each answer: ``nth`` counts arrivals of the same ``X-BYS-Event-Id``
(1 for the first). It may return a status, or ``(status, delay_seconds)`` to
answer late (for timeouts). Every request is recorded with its raw body; the
largest number of simultaneous requests per event id is tracked too.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes
    nth: int
    at: float = field(default_factory=time.time)

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.raw)

    @property
    def event_id(self) -> str:
        return self.headers.get("x-bys-event-id", "")


def always(status: int) -> Callable[[Received, int], int]:
    return lambda _req, _nth: status


class Receiver:
    def __init__(self, respond: Callable[[Received, int], Any] = always(200), tls: ssl.SSLContext | None = None) -> None:
        self.respond = respond
        self.requests: list[Received] = []
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                key = headers.get("x-bys-event-id", "")
                with receiver._lock:
                    receiver._seen[key] += 1
                    req = Received(self.path, headers, raw, receiver._seen[key])
                    receiver.requests.append(req)
                    receiver.in_flight[key] += 1
                    receiver.max_in_flight[key] = max(receiver.max_in_flight[key], receiver.in_flight[key])
                try:
                    answer = receiver.respond(req, req.nth)
                    status, delay = answer if isinstance(answer, tuple) else (answer, 0.0)
                    if delay:
                        time.sleep(delay)
                    try:
                        self.send_response(status)
                        if 300 <= status < 400:
                            self.send_header("Location", "/redirected")
                        self.send_header("Content-Length", "2")
                        self.end_headers()
                        self.wfile.write(b"ok")
                    except OSError:
                        pass  # the sender gave up (timeout) and closed the connection
                finally:
                    with receiver._lock:
                        receiver.in_flight[key] -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:  # serve https with the given server context
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of_event(self, event_id: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.event_id == event_id]

    def events(self) -> list[str]:
        with self._lock:
            return [r.headers.get("x-bys-event", "") for r in self.requests]

    async def wait_until(self, predicate: Callable[[Receiver], bool], timeout: float = 20.0) -> None:
        """Wait (without blocking the event loop) until ``predicate(self)`` holds; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver condition not met; got {len(self.requests)} requests: {self.events()}")
            await asyncio.sleep(0.02)

    def wait_until_sync(self, predicate: Callable[[Receiver], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver condition not met; got {len(self.requests)} requests: {self.events()}")
            time.sleep(0.05)
