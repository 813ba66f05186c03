"""The FastAPI application: routes of spec section 4, auth, error envelopes, request ids."""

from __future__ import annotations

import hmac
import re
import uuid
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from byourside_server import __version__
from byourside_server.api.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from byourside_server.api.metrics import render as render_metrics
from byourside_server.api.openapi import CALL_REQUEST_SCHEMA, ERROR_RESPONSES, openapi_document
from byourside_server.api.requests import MAX_BODY_BYTES, parse_body, validate_call_request
from byourside_server.api.recording_links import RecordingLinks, load_signing_secret
from byourside_server.api.serialize import call_to_json, json_text
from byourside_server.domain import CallStatus
from byourside_server.errors import ApiError, InvalidRequest, NotFound, Unauthorized
from byourside_server.guardrails.text import parse_ascii_int, printable_ascii
from byourside_server.mcp.http import bearer_secret
from byourside_server.placement import place_call, request_hash
from byourside_server.services import Services
from byourside_server.store.records import Account, ApiKeyRecord

log = structlog.get_logger(__name__)

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_MAX_IDEMPOTENCY_KEY = 255


class SafeJSONResponse(JSONResponse):
    """Every JSON response: encoding cannot fail on what a stored row holds (see ``json_text``)."""

    def render(self, content: Any) -> bytes:
        return json_text(content).encode("utf-8")


def error_response(token: str, message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return SafeJSONResponse({"error": token, "message": message}, status_code=status, headers=headers)


def api_error_response(exc: ApiError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return error_response(exc.token, exc.message, exc.http_status, headers)


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


async def _authenticate(request: Request) -> tuple[Account, ApiKeyRecord]:
    secret = bearer_secret(request.headers)
    if not secret:
        raise Unauthorized()
    services: Services = request.app.state.services
    found = await services.accounts.authenticate(secret)
    if found is None:
        raise Unauthorized()
    return found


async def _read_body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidRequest(f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_limit(raw: str | None) -> int:
    """Out-of-range limits are clamped (spec), non-numeric ones fall back to the default."""
    value = parse_ascii_int(raw, max_digits=12)
    return 20 if value is None else max(1, min(100, value))


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    methods: set[str] = set()
    for route in app.routes:
        if getattr(route, "methods", None) and route.path_regex.match(path):  # type: ignore[attr-defined]
            methods |= route.methods  # type: ignore[attr-defined]
    return sorted(methods)


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="byourside Agent Calling API",
        version=__version__,
        description="Place outbound AI phone calls and read their outcome. Contract: spec/agent-api.md.",
        default_response_class=SafeJSONResponse,
    )
    app.state.services = services
    settings = services.settings
    links = RecordingLinks(
        load_signing_secret(settings.signing_secret, settings.data_dir),
        settings.effective_public_base_url,
        settings.recording_url_ttl_seconds,
    )

    def to_json(call: Any) -> dict[str, Any]:
        return call_to_json(call, base_url=settings.effective_public_base_url, recording_url=links.url)

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

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> JSONResponse:
        ok = await services.db.ping()
        return JSONResponse({"ok": ok, "version": __version__}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"], response_class=Response,
             responses={401: {"description": "BYS_METRICS_TOKEN is set and the request does not carry it"}})
    async def metrics(request: Request) -> Response:
        token = settings.metrics_token
        if token and not hmac.compare_digest(bearer_secret(request.headers).encode(), token.encode()):
            raise Unauthorized("Send 'Authorization: Bearer <BYS_METRICS_TOKEN>' to read /metrics.")
        snapshot = await services.calls.metrics(settings.metrics_window_seconds)
        return Response(render_metrics(snapshot, settings.metrics_window_seconds), media_type=METRICS_CONTENT_TYPE)

    @app.post(
        "/v1/agent/calls",
        status_code=201,
        tags=["calls"],
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": CALL_REQUEST_SCHEMA}}}},
        responses=ERROR_RESPONSES,
    )
    async def create_call(request: Request) -> JSONResponse:
        account, key = await _authenticate(request)
        body = parse_body(await _read_body(request))
        call_request = validate_call_request(body)
        idem = request.headers.get("idempotency-key")
        if idem is not None and not printable_ascii(idem, _MAX_IDEMPOTENCY_KEY):
            raise InvalidRequest(f"Idempotency-Key must be 1-{_MAX_IDEMPOTENCY_KEY} printable ASCII characters.")
        created = await place_call(
            services, account, key, call_request, idempotency_key=idem, body_hash=request_hash(body) if idem else None
        )
        headers = {"Idempotent-Replayed": "true"} if created.replayed else None
        if not created.replayed:
            log.info("call_queued", call_id=created.response["callId"], account_id=account.id)
        return SafeJSONResponse(dict(created.response), status_code=201, headers=headers)

    @app.get("/v1/agent/calls/{call_id}", tags=["calls"], responses=ERROR_RESPONSES)
    async def get_call(call_id: str, request: Request) -> dict[str, Any]:
        account, _ = await _authenticate(request)
        call = await services.calls.get(account.id, call_id)
        return to_json(call)

    @app.get("/v1/agent/calls", tags=["calls"], responses=ERROR_RESPONSES)
    async def list_calls(
        request: Request, limit: str | None = None, cursor: str | None = None, status: str | None = None
    ) -> dict[str, Any]:
        account, _ = await _authenticate(request)
        try:
            status_filter = CallStatus(status) if status else None
        except ValueError:
            raise InvalidRequest("'status' must be one of: " + ", ".join(s.value for s in CallStatus)) from None
        calls, next_cursor = await services.calls.list(
            account.id, limit=_parse_limit(limit), cursor=cursor or None, status=status_filter
        )
        return {"calls": [to_json(c) for c in calls], "nextCursor": next_cursor}

    @app.post("/v1/agent/calls/{call_id}/cancel", tags=["calls"], responses=ERROR_RESPONSES)
    async def cancel_call(call_id: str, request: Request) -> dict[str, Any]:
        account, _ = await _authenticate(request)
        call = await services.calls.request_cancel(account.id, call_id)
        services.signals.cancel_requested.set()
        log.info("call_cancel_requested", call_id=call.id)
        return to_json(call)

    @app.get("/v1/agent/calls/{call_id}/recording", tags=["calls"], responses=ERROR_RESPONSES)
    async def get_recording(call_id: str, request: Request) -> Response:
        """Served with the Bearer key, or without one through an unexpired signed link."""
        query = request.query_params
        if "authorization" not in request.headers and links.verify(call_id, query.get("expires"), query.get("token")):
            call = await services.calls.get_any(call_id)
            if call is None:
                raise NotFound()
        else:
            account, _ = await _authenticate(request)
            call = await services.calls.get(account.id, call_id)
        if not call.recording_path:
            raise NotFound("This call has no recording.")
        return FileResponse(call.recording_path, media_type="audio/wav")

    from byourside_server.webhooks.api import mount_webhook_routes

    mount_webhook_routes(app, services, _authenticate, _read_body)  # (ext) webhook events and test ping
    from byourside_server.mcp.http import mount_mcp

    mount_mcp(app, services)  # MCP over streamable HTTP at /mcp (Bearer agent key)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]  (the exact document)
    app.add_middleware(RequestContextMiddleware)
    return app

