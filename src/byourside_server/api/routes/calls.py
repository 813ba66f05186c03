"""``/v1/agent/calls``: place a call, read one, list them, cancel one (spec section 4), erase one (ext)."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from byourside_server.api.common import SafeJSONResponse, authenticate, call_json, read_body, services_of
from byourside_server.api.openapi import CALL_REQUEST_SCHEMA, ERROR_RESPONSES
from byourside_server.api.requests import parse_body, validate_call_request
from byourside_server.compliance.retention import erase_call
from byourside_server.domain import CallStatus
from byourside_server.errors import InvalidRequest
from byourside_server.guardrails.text import parse_ascii_int, printable_ascii
from byourside_server.placement import place_call, request_hash

log = structlog.get_logger(__name__)

MAX_IDEMPOTENCY_KEY = 255

router = APIRouter(tags=["calls"], responses=ERROR_RESPONSES)


def parse_limit(raw: str | None) -> int:
    """Out-of-range limits are clamped (spec), non-numeric ones fall back to the default."""
    value = parse_ascii_int(raw, max_digits=12)
    return 20 if value is None else max(1, min(100, value))


@router.post(
    "/v1/agent/calls",
    status_code=201,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": CALL_REQUEST_SCHEMA}}}},
)
async def create_call(request: Request) -> JSONResponse:
    account, key = await authenticate(request)
    body = parse_body(await read_body(request))
    call_request = validate_call_request(body)
    idem = request.headers.get("idempotency-key")
    if idem is not None and not printable_ascii(idem, MAX_IDEMPOTENCY_KEY):
        raise InvalidRequest(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters.")
    created = await place_call(
        services_of(request), account, key, call_request,
        idempotency_key=idem, body_hash=request_hash(body) if idem else None,
    )
    headers = {"Idempotent-Replayed": "true"} if created.replayed else None
    if not created.replayed:
        log.info("call_queued", call_id=created.response["callId"], account_id=account.id)
    return SafeJSONResponse(dict(created.response), status_code=201, headers=headers)


@router.get("/v1/agent/calls/{call_id}")
async def get_call(call_id: str, request: Request) -> dict[str, Any]:
    account, _ = await authenticate(request)
    call = await services_of(request).calls.get(account.id, call_id)
    return call_json(request, call)


@router.get("/v1/agent/calls")
async def list_calls(
    request: Request, limit: str | None = None, cursor: str | None = None, status: str | None = None
) -> dict[str, Any]:
    account, _ = await authenticate(request)
    try:
        status_filter = CallStatus(status) if status else None
    except ValueError:
        raise InvalidRequest("'status' must be one of: " + ", ".join(s.value for s in CallStatus)) from None
    calls, next_cursor = await services_of(request).calls.list(
        account.id, limit=parse_limit(limit), cursor=cursor or None, status=status_filter
    )
    return {"calls": [call_json(request, c) for c in calls], "nextCursor": next_cursor}


@router.delete("/v1/agent/calls/{call_id}")
async def delete_call(call_id: str, request: Request) -> dict[str, Any]:
    """(ext) Erase an ended call's personal data (compliance/retention.py); the same body every time."""
    account, _ = await authenticate(request)
    call = await erase_call(services_of(request), account.id, call_id)
    return call_json(request, call)


@router.post("/v1/agent/calls/{call_id}/cancel")
async def cancel_call(call_id: str, request: Request) -> dict[str, Any]:
    account, _ = await authenticate(request)
    services = services_of(request)
    call = await services.calls.request_cancel(account.id, call_id)
    services.signals.cancel_requested.set()
    log.info("call_cancel_requested", call_id=call.id)
    return call_json(request, call)
