"""The FastAPI application: error envelopes, request ids, and the routers of api/routes/
(one per resource) and MCP mounted on it."""

from __future__ import annotations

import re
import uuid
from typing import Iterator

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from byourside_server import __version__
from byourside_server.api.common import SafeJSONResponse, api_error_response, error_response
from byourside_server.api.openapi import openapi_document
from byourside_server.api.recording_links import RecordingLinks, load_signing_secret
from byourside_server.api.routes import calls, ops, recordings, webhooks
from byourside_server.api.routes import usage
from byourside_server.api.routes import batches, calling_hours, suppressions
from byourside_server.api.routes import voices
from byourside_server.errors import ApiError
from byourside_server.services import Services

log = structlog.get_logger(__name__)

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestContextMiddleware:
    """Assigns X-Request-Id and turns any escaped exception into a bare 500 envelope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID_RE.fullmatch(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("unhandled_error", path=scope.get("path"))
                if not started:
                    response = error_response(
                        "internal_error", "Something went wrong on our side; quote the X-Request-Id when reporting it.", 500
                    )
                    await response(scope, receive, send_with_id)


ROUTERS = (ops.router, calls.router, recordings.router, webhooks.router, suppressions.router,
           calling_hours.router, batches.router, voices.router, usage.router)


def _every_route(routes: list) -> Iterator:
    """Routes, with each included router (which app.routes holds as one entry) opened into its own."""
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from _every_route(included.routes) if included is not None else (route,)


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    methods: set[str] = set()
    for route in _every_route(app.routes):
        if getattr(route, "methods", None) and route.path_regex.match(path):  # type: ignore[attr-defined]
            methods |= route.methods  # type: ignore[attr-defined]
    return sorted(methods)


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="byourside Agent Calling API",
        version=__version__,
        description="Place outbound AI phone calls and read their outcome. Contract: spec/agent-api.md.",
        default_response_class=SafeJSONResponse,
        docs_url=None, redoc_url=None,  # served with local assets by mount_dashboard
    )
    settings = services.settings
    app.state.services = services
    app.state.recording_links = RecordingLinks(
        load_signing_secret(settings.signing_secret, settings.data_dir),
        settings.effective_public_base_url,
        settings.recording_url_ttl_seconds,
    )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return api_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response("invalid_request", "The request is not valid.", 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response("not_found", "No such endpoint.", 404)
        if exc.status_code == 405:  # RFC 9110: Allow lists every method of the path, from all its routes
            headers = {"Allow": ", ".join(_allowed_methods(request.app, request.url.path))}
            return error_response("invalid_request", "Method not allowed on this endpoint.", 405, headers)
        return error_response("invalid_request", str(exc.detail), exc.status_code, getattr(exc, "headers", None))

    for router in ROUTERS:
        app.include_router(router)
    from byourside_server.dashboard import mount_dashboard
    from byourside_server.mcp.http import mount_mcp

    mount_mcp(app, services)  # MCP over streamable HTTP at /mcp (Bearer agent key)
    mount_dashboard(app, services)  # /dashboard, /docs and /redoc with local assets, / redirects there
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]  (the exact document)
    app.add_middleware(RequestContextMiddleware)
    return app

