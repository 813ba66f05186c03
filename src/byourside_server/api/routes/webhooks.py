"""The (ext) webhook endpoints.

- ``GET /v1/agent/calls/{id}/webhooks``: the call's events with every attempt.
- ``POST /v1/agent/webhooks/test`` ``{"url": ...}``: send a signed ``ping`` event
  now (same checks, signing and pinning as real deliveries) and return the result.

The resolver used for both checks is ``app.state.webhook_resolver`` when set
(tests point names at chosen addresses), else the system resolver.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Request

from byourside_server.api.common import authenticate, read_body, services_of
from byourside_server.api.openapi import ERROR_RESPONSES
from byourside_server.api.requests import MAX_URL, parse_body
from byourside_server.errors import InvalidRequest
from byourside_server.guardrails.webhook_urls import system_resolver
from byourside_server.services import Services
from byourside_server.webhooks.store import WebhookRepo
from byourside_server.webhooks.test_event import send_test_event

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
    body = parse_body(await read_body(request))
    url = body.get("url")
    if not isinstance(url, str) or not url.strip() or len(url) > MAX_URL:
        raise InvalidRequest(f"'url' must be a string of 1-{MAX_URL} characters.")
    resolver = getattr(request.app.state, "webhook_resolver", system_resolver)
    sent = await send_test_event(services, account.id, url, resolver)
    attempt = sent["attempt"]
    log.info("webhook_test", account_id=account.id, outcome=attempt["outcome"], http_status=attempt["httpStatus"])
    return sent
