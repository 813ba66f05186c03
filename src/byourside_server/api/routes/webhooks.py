"""The (ext) webhook endpoints.

- ``GET /v1/agent/calls/{id}/webhooks``: the call's events with every attempt.
- ``POST /v1/agent/webhooks/test`` ``{"url": ...}``: send a signed ``ping`` event
  now (same checks, signing and pinning as real deliveries) and return the result.

The resolver used for both checks is ``app.state.webhook_resolver`` when set
(tests point names at chosen addresses), else the system resolver.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from fastapi import APIRouter, Request

from byourside_server.api.common import authenticate, read_body, services_of
from byourside_server.api.openapi import ERROR_RESPONSES
from byourside_server.api.requests import MAX_URL, parse_body
from byourside_server.errors import InvalidRequest
from byourside_server.guardrails.webhook_urls import check_webhook_url, system_resolver
from byourside_server.placement import check_sendable_url
from byourside_server.services import Services
from byourside_server.webhooks.delivery import build_sender, signed_headers
from byourside_server.webhooks.events import PING, build_payload, new_event_id
from byourside_server.webhooks.store import WebhookRepo

log = structlog.get_logger(__name__)

router = APIRouter(tags=["webhooks"], responses=ERROR_RESPONSES)


def _repo(services: Services) -> WebhookRepo:
    return WebhookRepo(services.db, services.clock,
                       secret_grace_seconds=services.settings.webhook_secret_grace_seconds)


@router.get("/v1/agent/calls/{call_id}/webhooks")
async def list_call_webhooks(call_id: str, request: Request) -> dict[str, Any]:
    account, _ = await authenticate(request)
    events = await _repo(services_of(request)).list_for_call(account.id, call_id)
    return {"callId": call_id, "events": events}


@router.post("/v1/agent/webhooks/test")
async def test_webhook(request: Request) -> dict[str, Any]:
    account, _ = await authenticate(request)
    services = services_of(request)
    settings = services.settings
    body = parse_body(await read_body(request))
    url = body.get("url")
    if not isinstance(url, str) or not url.strip() or len(url) > MAX_URL:
        raise InvalidRequest(f"'url' must be a string of 1-{MAX_URL} characters.")
    check_sendable_url(url)
    resolver = getattr(request.app.state, "webhook_resolver", system_resolver)
    await check_webhook_url(
        url, allow_http=settings.webhook_allow_http, allow_private=settings.webhook_allow_private, resolver=resolver
    )
    event_id = new_event_id()
    payload = build_payload(PING, event_id, services.clock.now()).encode()
    headers = signed_headers(PING, event_id, payload, await _repo(services).secrets(account.id), time.time())
    sender = build_sender(settings, resolver=resolver)
    try:
        result = await sender.send(url, payload, headers)
    finally:
        await sender.aclose()
    log.info("webhook_test", account_id=account.id, outcome=result.outcome, http_status=result.http_status)
    return {"eventId": event_id, "event": PING, "delivered": result.delivered, "attempt": result.to_json()}
