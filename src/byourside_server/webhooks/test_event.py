"""Send a signed ``ping`` event to a URL now and return the attempt's result: the API's
``POST /v1/agent/webhooks/test`` and the dashboard's "Send test event" share it, so both
make the same checks (a sendable URL, a public address unless allowed) and sign alike."""

from __future__ import annotations

import time
from typing import Any

from byourside_server.guardrails.webhook_urls import Resolver, check_webhook_url, system_resolver
from byourside_server.placement import check_sendable_url
from byourside_server.services import Services
from byourside_server.webhooks.delivery import build_sender, signed_headers
from byourside_server.webhooks.events import PING, build_payload, new_event_id
from byourside_server.webhooks.store import WebhookRepo


async def send_test_event(services: Services, account_id: str, url: str,
                          resolver: Resolver = system_resolver) -> dict[str, Any]:
    """``{"eventId", "event", "delivered", "attempt"}``; raises ``InvalidWebhookUrl`` for a URL
    that may not be sent to (nothing is sent then)."""
    settings = services.settings
    check_sendable_url(url)
    await check_webhook_url(
        url, allow_http=settings.webhook_allow_http, allow_private=settings.webhook_allow_private, resolver=resolver
    )
    repo = WebhookRepo(services.db, services.clock, secret_grace_seconds=settings.webhook_secret_grace_seconds)
    event_id = new_event_id()
    payload = build_payload(PING, event_id, services.clock.now()).encode()
    headers = signed_headers(PING, event_id, payload, await repo.secrets(account_id), time.time())
    sender = build_sender(settings, resolver=resolver)
    try:
        result = await sender.send(url, payload, headers)
    finally:
        await sender.aclose()
    return {"eventId": event_id, "event": PING, "delivered": result.delivered, "attempt": result.to_json()}
