"""What every router shares: the JSON response class, error envelopes, Bearer-key
authentication, bounded body reading and the call object with its signed recording link.

``create_app`` (app.py) puts the services and the recording links on ``app.state``;
the routers read them from there, so each router is a plain module-level ``APIRouter``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from byourside_server.api.recording_links import RecordingLinks
from byourside_server.api.requests import MAX_BODY_BYTES
from byourside_server.errors import ApiError, InvalidRequest, Unauthorized
from byourside_server.mcp.http import bearer_secret
from byourside_server.services import Services
from byourside_server.store.records import Account, ApiKeyRecord, CallRecord
from byourside_server.wire import call_to_json, json_text


class SafeJSONResponse(JSONResponse):
    """Every JSON response: encoding cannot fail on what a stored row holds (see ``json_text``)."""

    def render(self, content: Any) -> bytes:
        return json_text(content).encode("utf-8")


def error_response(token: str, message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return SafeJSONResponse({"error": token, "message": message}, status_code=status, headers=headers)


def api_error_response(exc: ApiError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return error_response(exc.token, exc.message, exc.http_status, headers)


def services_of(request: Request) -> Services:
    return request.app.state.services


def recording_links(request: Request) -> RecordingLinks:
    return request.app.state.recording_links


async def authenticate(request: Request) -> tuple[Account, ApiKeyRecord]:
    secret = bearer_secret(request.headers)
    if not secret:
        raise Unauthorized()
    found = await services_of(request).accounts.authenticate(secret)
    if found is None:
        raise Unauthorized()
    return found


async def read_body(request: Request) -> bytes:
    """The request body, refused once it passes MAX_BODY_BYTES (before reading the rest)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidRequest(f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.")
        chunks.append(chunk)
    return b"".join(chunks)


def call_json(request: Request, call: CallRecord) -> dict[str, Any]:
    """The call object as this server shows it: absolute URLs, a signed recording link."""
    settings = services_of(request).settings
    return call_to_json(call, base_url=settings.effective_public_base_url, recording_url=recording_links(request).url)
