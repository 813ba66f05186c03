"""A fake OpenAI-compatible chat-completions server for tests: a real HTTP server on loopback.

It speaks ``POST /v1/chat/completions`` both ways a client may ask: a JSON
completion, or server-sent events (``stream: true``) where content arrives a
few words per chunk and tool-call arguments arrive in pieces. Replies are
scripted: requests that carry ``response_format`` (the post-call analysis)
take the next item of ``analysis``, all others the next item of ``chat``.
``fail_next`` answers that many requests with HTTP 500 first; ``down`` answers
every request with 503. Every request body is kept in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Reply:
    """What the model answers: words to say and/or tool calls ``(name, arguments)``."""

    text: str = ""
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    delay: float = 0.0  # seconds to wait before answering (to trip client timeouts)
    # Streaming: after this many chunks, wait (up to 10 s) until ``FakeOpenAI.resume`` is set before the rest.
    hold_after_chunks: int | None = None


@dataclass
class Error:
    status: int
    message: str = "scripted failure"


def say(text: str) -> Reply:
    return Reply(text=text)


def tool(name: str, text: str = "", **arguments: Any) -> Reply:
    return Reply(text=text, tools=[(name, arguments)])


def analysis(summary: str, objective_met: bool | None, extracted: dict[str, Any],
             evidence: dict[str, Any]) -> Reply:
    return Reply(text=json.dumps({"summary": summary, "objectiveMet": objective_met,
                                  "extracted": extracted, "evidence": evidence}))


class FakeOpenAI:
    def __init__(self) -> None:
        self.chat: list[Reply | Error] = []
        self.analysis: list[Reply | Error] = []
        self.fallback: Callable[[dict[str, Any]], Reply | Error] | None = None
        self.fail_next = 0
        self.down = False
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.resume = threading.Event()  # releases a stream held by ``Reply.hold_after_chunks``
        self.resumed_in_time: list[bool] = []  # per held stream: was it released before the wait ran out
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "response_format" not in r]

    @property
    def analysis_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "response_format" in r]

    def _next(self, body: dict[str, Any]) -> Reply | Error:
        with self._lock:
            self.requests.append(body)
            if self.down:
                return Error(503, "the model is down")
            if self.fail_next > 0:
                self.fail_next -= 1
                return Error(500, "internal error")
            queue = self.analysis if "response_format" in body else self.chat
            if queue:
                return queue.pop(0)
        if self.fallback is not None:
            return self.fallback(body)
        return Error(500, "the fake server has no scripted reply left")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.endswith("/chat/completions"):
                    return self._json(404, {"error": {"message": "not found"}})
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = fake._next(body)
                if isinstance(reply, Error):
                    return self._json(reply.status, {"error": {"message": reply.message, "type": "server_error"}})
                if reply.delay:
                    time.sleep(reply.delay)
                if body.get("stream"):
                    return self._stream(body, reply)
                return self._json(200, _completion(body, reply))

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any], reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for index, chunk in enumerate(_chunks(body, reply)):
                    if index == reply.hold_after_chunks:
                        fake.resumed_in_time.append(fake.resume.wait(10))
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [{"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for i, (name, args) in enumerate(reply.tools)]


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tools:
        message["tool_calls"] = _tool_calls(reply)
    return {"id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tools else "stop"}]}


def _chunks(body: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": body.get("model"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    words = reply.text.split(" ")
    for i in range(0, len(words), 2):  # two words per chunk, spaces kept
        piece = " ".join(words[i : i + 2]) + (" " if i + 2 < len(words) else "")
        out.append(chunk({"content": piece}))
    for i, call in enumerate(_tool_calls(reply)):
        args = call["function"]["arguments"]
        half = len(args) // 2
        out.append(chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                          "function": {"name": call["function"]["name"], "arguments": args[:half]}}]}))
        out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": args[half:]}}]}))
    out.append(chunk({}, "tool_calls" if reply.tools else "stop"))
    return out
