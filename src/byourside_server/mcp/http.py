"""The MCP server over streamable HTTP at ``/mcp`` inside ``byourside serve``.

Authentication: the agent key as ``Authorization: Bearer bys_ak_...``, checked against
the store before anything MCP-specific runs; missing, unknown or revoked keys get the
API's own ``401 {"error": "unauthorized"}``.

Acting on the key's account: each tool call builds an SDK client with the presented key
whose transport hands the request straight to this same FastAPI application in-process
(a direct ASGI call). That reuses the real routes (validation, guardrails, limits,
account scoping, error envelopes) without a network hop, and works whatever address
the server listens on (0.0.0.0, a Unix socket behind a proxy, tests without a port).

The session manager runs stateless (every POST stands alone and re-authenticates), so
no MCP session state outlives a request and a revoked key stops working at once. It is
started lazily on the first authenticated request, because ``byourside serve`` runs
uvicorn without ASGI lifespan events.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import anyio.from_thread
import byourside
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MCP_PATH = "/mcp"
_INTERNAL_BASE_URL = "http://byourside.internal"


class InProcessTransport:
    """SDK transport that serves requests with the ASGI app on the event loop.

    Called from the SDK in a worker thread started by ``anyio.to_thread``; it hops back
    to the loop with ``anyio.from_thread.run``. One instance per tool call, so
    ``last_headers`` (read by the SDK for Retry-After) is never shared.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last_headers: dict[str, str] | None = None

    def __call__(self, method: str, url: str, headers: dict[str, str], body: str | None) -> tuple[int, Any]:
        return anyio.from_thread.run(self._request, method, url, headers, body)

    async def _request(self, method: str, url: str, headers: dict[str, str], body: str | None) -> tuple[int, Any]:
        """One plain ASGI request/response exchange with the app (no socket, no client library)."""
        split = urlsplit(url)
        content = body.encode() if body else b""
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw_headers += [(b"host", b"byourside.internal"), (b"content-length", str(len(content)).encode())]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": unquote(split.path), "raw_path": split.path.encode(),
            "query_string": split.query.encode(), "root_path": "", "headers": raw_headers,
            "client": ("127.0.0.1", 0), "server": ("byourside.internal", 80),
        }
        sent = False
        status, response_headers, chunks = 500, [], []

        async def receive() -> Message:
            nonlocal sent
            if sent:
                await anyio.sleep_forever()  # like a client that keeps the connection open
            sent = True
            return {"type": "http.request", "body": content, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status, response_headers = message["status"], message.get("headers", [])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        self.last_headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response_headers}
        data = b"".join(chunks)
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return status, parsed


def bearer_secret(headers: Any) -> str:
    """The secret of an ``Authorization: Bearer <secret>`` header, or ''."""
    scheme, _, secret = (headers.get("authorization") or "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


class McpHttpEndpoint:
    """ASGI app for ``/mcp``: Bearer auth, then the MCP streamable HTTP transport."""

    def __init__(self, app: ASGIApp, services: Any) -> None:
        self.services = services
        self.app = app
        self.manager: Any = None  # built on first use: importing mcp costs ~1 s, most apps never need it
        self._runner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._start_lock = asyncio.Lock()

    def _build_manager(self) -> Any:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
        from mcp.server.transport_security import TransportSecuritySettings

        from byourside_server.mcp.tools import build_mcp, quiet_mcp_loggers

        quiet_mcp_loggers()

        def client_for(ctx: Any) -> byourside.Client:
            request = ctx.request_context.request
            secret = bearer_secret(request.headers) if request is not None else ""
            return byourside.Client(api_key=secret, base_url=_INTERNAL_BASE_URL, transport=InProcessTransport(self.app))

        return StreamableHTTPSessionManager(
            app=build_mcp(client_for)._mcp_server,
            json_response=False,
            stateless=True,
            # Browsers cannot forge the Bearer key, so the Host/Origin allow-list (against DNS
            # rebinding of unauthenticated local servers) would only break proxied deployments.
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        secret = bearer_secret(headers)
        if not secret or await self.services.accounts.authenticate(secret) is None:
            await _unauthorized(send)
            return
        await self._ensure_started()
        await self.manager.handle_request(scope, receive, send)

    async def _ensure_started(self) -> None:
        async with self._start_lock:
            if self._runner is None:  # the session manager can run once per instance
                self.manager = self._build_manager()
                self._runner = asyncio.create_task(self._run(), name="byourside-mcp-sessions")
        await self._ready.wait()

    async def _run(self) -> None:
        try:
            async with self.manager.run():
                self._ready.set()
                await anyio.sleep_forever()
        finally:
            self._ready.set()  # never leave a request waiting on a manager that failed to start


async def _unauthorized(send: Send) -> None:
    body = json.dumps({"error": "unauthorized", "message": "Send your agent key as 'Authorization: Bearer bys_ak_...'."})
    await send({
        "type": "http.response.start",
        "status": 401,
        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="byourside"')],
    })
    await send({"type": "http.response.body", "body": body.encode()})


def mount_mcp(app: Any, services: Any) -> None:
    """Serve MCP over streamable HTTP at ``/mcp`` on the FastAPI ``app``."""
    app.add_route(MCP_PATH, McpHttpEndpoint(app, services), include_in_schema=False)
