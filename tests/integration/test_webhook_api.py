"""The (ext) webhook endpoints and the submission-time URL check, over the real app."""

from __future__ import annotations

import json

import httpx
import pytest
from byourside import verify_webhook
from support import auth, make_settings, new_account, open_services
from webhook_receiver import Receiver, always

from byourside_server.api.app import create_app
from byourside_server.services import build_services
from byourside_server.webhooks.store import WebhookRepo

# Literal addresses (no DNS involved) of every family refused at submission.
REFUSED_URLS = [
    "https://127.0.0.1/hook", "https://10.0.0.1/hook", "https://172.16.5.4/hook", "https://192.168.0.10/hook",
    "https://169.254.169.254/latest", "https://100.64.0.1/hook", "https://0.0.0.0/hook", "https://224.0.0.1/hook",
    "https://240.0.0.1/hook", "https://[::1]/hook", "https://[fe80::1]/hook", "https://[fd00::1]/hook",
    "https://[::ffff:127.0.0.1]/hook", "https://[::ffff:10.0.0.1]/hook", "https://[64:ff9b::a00:1]/hook",
    "https://[2002:a00:1::1]/hook", "https://[2001::1]/hook", "https://[ff02::1]/hook", "https://localhost/hook",
    "http://8.8.8.8/hook", "ftp://8.8.8.8/hook", "not a url",
]


async def _client(services):
    transport = httpx.ASGITransport(app=create_app(services))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def strict(tmp_path):
    """Production rules: https only, public addresses only (the check involves no database: SQLite only)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'byourside.db'}"
    svc = await open_services(url, tmp_path, webhook_allow_private=False, webhook_allow_http=False)
    account, key = await new_account(svc)
    async with await _client(svc) as client:
        yield svc, client, account, key
    await svc.aclose()


@pytest.fixture
async def local(database_url, tmp_path):
    """Local development rules (the test defaults): loopback receivers allowed."""
    svc = await open_services(database_url, tmp_path, webhook_secret_grace_seconds=3600)
    account, key = await new_account(svc)
    async with await _client(svc) as client:
        yield svc, client, account, key
    await svc.aclose()


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_blocked_webhook_urls_are_refused_at_submission(strict, url):
    _, client, _, key = strict
    body = {"to": "+14155550123", "objective": "Ask for the opening hours.", "webhookUrl": url}
    response = await client.post("/v1/agent/calls", json=body, headers=auth(key))
    assert response.status_code == 400 and response.json()["error"] == "invalid_webhook_url"
    ping = await client.post("/v1/agent/webhooks/test", json={"url": url}, headers=auth(key))
    assert ping.status_code == 400 and ping.json()["error"] == "invalid_webhook_url"
    listed = await client.get("/v1/agent/calls", headers=auth(key))
    assert listed.json()["calls"] == []  # nothing was created


async def test_a_public_literal_address_is_accepted(strict):
    _, client, _, key = strict
    body = {"to": "+14155550123", "objective": "Ask for the opening hours.", "webhookUrl": "https://8.8.8.8/hook"}
    response = await client.post("/v1/agent/calls", json=body, headers=auth(key))
    assert response.status_code == 201


async def test_test_endpoint_sends_a_signed_ping(local):
    _, client, account, key = local
    with Receiver() as receiver:
        response = await client.post("/v1/agent/webhooks/test", json={"url": receiver.url()}, headers=auth(key))
    assert response.status_code == 200
    result = response.json()
    assert result["delivered"] is True and result["event"] == "ping"
    assert result["attempt"]["httpStatus"] == 200 and result["attempt"]["outcome"] == "delivered"
    (req,) = receiver.requests
    assert req.json["event"] == "ping" and req.json["eventId"] == result["eventId"] == req.headers["x-bys-event-id"]
    assert verify_webhook(req.headers["x-bys-signature"], req.raw, account.webhook_secret)


async def test_test_endpoint_reports_failures_and_never_follows_redirects(local):
    _, client, _, key = local
    for status, outcome in ((500, "http_error"), (307, "http_error"), (410, "gone")):
        with Receiver(always(status)) as receiver:
            response = await client.post("/v1/agent/webhooks/test", json={"url": receiver.url()}, headers=auth(key))
        result = response.json()
        assert result["delivered"] is False and result["attempt"]["httpStatus"] == status
        assert result["attempt"]["outcome"] == outcome
        assert [r.path for r in receiver.requests] == ["/hook"]


@pytest.mark.parametrize("body", [{}, {"url": 5}, {"url": ""}, [1]])
async def test_test_endpoint_validates_its_body(local, body):
    _, client, _, key = local
    response = await client.post("/v1/agent/webhooks/test", content=json.dumps(body), headers=auth(key))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_after_rotation_both_secrets_sign_until_the_grace_period_ends(local, database_url, tmp_path):
    svc, client, account, key = local
    new_secret = await WebhookRepo(svc.db, svc.clock).rotate_secret(account.id)
    with Receiver() as receiver:
        await client.post("/v1/agent/webhooks/test", json={"url": receiver.url()}, headers=auth(key))
    (req,) = receiver.requests
    header = req.headers["x-bys-signature"]
    assert header.count("v1=") == 2
    assert verify_webhook(header, req.raw, new_secret) and verify_webhook(header, req.raw, account.webhook_secret)
    # Without a grace period only the new secret signs.
    other = build_services(make_settings(database_url, tmp_path, webhook_secret_grace_seconds=0))  # same store
    try:
        async with await _client(other) as client2:
            with Receiver() as receiver2:
                await client2.post("/v1/agent/webhooks/test", json={"url": receiver2.url()}, headers=auth(key))
    finally:
        await other.aclose()
    (req2,) = receiver2.requests
    assert req2.headers["x-bys-signature"].count("v1=") == 1
    assert verify_webhook(req2.headers["x-bys-signature"], req2.raw, new_secret)
    assert not verify_webhook(req2.headers["x-bys-signature"], req2.raw, account.webhook_secret)


async def test_listing_a_calls_webhooks_is_scoped_to_the_account(local):
    svc, client, _, key = local
    _, other_key = await new_account(svc)
    body = {"to": "+14155550123", "objective": "Ask for the opening hours.", "webhookUrl": "http://127.0.0.1:9/hook"}
    call_id = (await client.post("/v1/agent/calls", json=body, headers=auth(key))).json()["callId"]
    await client.post(f"/v1/agent/calls/{call_id}/cancel", headers=auth(key))
    mine = await client.get(f"/v1/agent/calls/{call_id}/webhooks", headers=auth(key))
    assert mine.status_code == 200
    (event,) = mine.json()["events"]
    assert event["event"] == "call.failed" and event["status"] == "pending" and event["attempts"] == []
    assert event["eventId"].startswith("evt_") and event["nextAttemptAt"]
    for headers, status, token in ((auth(other_key), 404, "not_found"), ({}, 401, "unauthorized")):
        response = await client.get(f"/v1/agent/calls/{call_id}/webhooks", headers=headers)
        assert response.status_code == status and response.json()["error"] == token
    unknown = await client.get("/v1/agent/calls/nope/webhooks", headers=auth(key))
    assert unknown.status_code == 404
