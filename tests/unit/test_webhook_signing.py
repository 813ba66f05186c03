"""Webhook signatures (checked with the SDK's verifier), rotation grace, retry schedule, address checks."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from byourside import verify_webhook
from pydantic import ValidationError

from byourside_server.domain import CallStatus
from byourside_server.errors import InvalidWebhookUrl
from byourside_server.guardrails.webhook_urls import (
    StaticResolver,
    check_webhook_url,
    is_public_address,
)
from byourside_server.settings import Settings
from byourside_server.webhooks.delivery import RetrySchedule, signed_headers
from byourside_server.webhooks.events import absolute_body, build_payload, event_name
from byourside_server.webhooks.sender import WebhookSender
from byourside_server.webhooks.signing import signature_header, signing_secrets, verify

NOW = 1_800_000_000
BODY = b'{"event":"call.completed","eventId":"evt_1","status":"completed"}'
OLD, NEW = "whsec_old_secret_value", "whsec_new_secret_value"

# One address per family that must never receive webhooks.
BLOCKED = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "100.127.255.254",
    "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "192.0.0.8", "198.18.0.1", "192.0.2.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "fec0::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:8.8.8.8", "::127.0.0.1",
    "64:ff9b::a00:1", "64:ff9b::808:808", "64:ff9b:1::1", "2002:a00:1::1", "2002:808:808::1", "2001::1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001::200e"]


def test_signature_verifies_with_the_sdk_and_only_for_the_exact_body():
    header = signature_header(BODY, [NEW], NOW)
    assert header.startswith(f"t={NOW},v1=")
    assert verify_webhook(header, BODY, NEW, now=NOW)
    assert not verify_webhook(header, BODY + b" ", NEW, now=NOW)
    assert not verify_webhook(header, BODY, OLD, now=NOW)
    assert not verify_webhook(header, BODY, NEW, now=NOW + 301)  # receivers reject stale timestamps


def test_during_rotation_both_secrets_sign_and_either_verifies():
    header = signature_header(BODY, [NEW, OLD], NOW)
    assert header.count("v1=") == 2
    assert verify_webhook(header, BODY, NEW, now=NOW) and verify_webhook(header, BODY, OLD, now=NOW)
    assert verify(header, BODY, [OLD], now=NOW) and not verify(header, BODY, ["whsec_other"], now=NOW)


def test_the_previous_secret_signs_only_during_the_grace_period():
    rotated = datetime(2026, 5, 1, tzinfo=UTC)
    assert signing_secrets(NEW, OLD, rotated, rotated + timedelta(hours=23), 86_400) == [NEW, OLD]
    assert signing_secrets(NEW, OLD, rotated, rotated + timedelta(hours=25), 86_400) == [NEW]
    assert signing_secrets(NEW, None, None, rotated, 86_400) == [NEW]


def test_signed_headers_name_the_event():
    headers = signed_headers("call.completed", "evt_1", BODY, [NEW], NOW)
    assert headers["X-BYS-Event"] == "call.completed" and headers["X-BYS-Event-Id"] == "evt_1"
    assert headers["User-Agent"].startswith("byourside-webhooks/") and headers["Content-Type"] == "application/json"
    assert verify_webhook(headers["X-BYS-Signature"], BODY, NEW, now=NOW)


def test_only_answered_and_terminal_statuses_send_events():
    assert [s.value for s in CallStatus if event_name(s)] == [
        "in_progress", "completed", "no_answer", "voicemail", "declined", "failed"
    ]


def test_payload_is_flat_and_the_recording_path_becomes_absolute_when_sent():
    when = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    payload = build_payload("call.completed", "evt_1", when, {"callId": "c1", "recordingUrl": "/v1/agent/calls/c1/recording"})
    body = json.loads(absolute_body(payload, "https://bys.example.com/"))
    assert body == {
        "callId": "c1", "recordingUrl": "https://bys.example.com/v1/agent/calls/c1/recording",
        "event": "call.completed", "eventId": "evt_1", "timestamp": "2026-05-01T12:00:00.000Z",
    }


def test_retry_schedule_default_jitter_and_end():
    schedule = RetrySchedule.parse(Settings().webhook_retry_schedule, jitter=0.1)
    assert schedule.delays == (0, 5, 300, 1800, 7200, 18000, 36000, 36000) and schedule.max_attempts == 8
    assert schedule.delay_before(1, rand=lambda: 1.0) == 0
    assert schedule.delay_before(2, rand=lambda: 0.0) == pytest.approx(4.5)
    assert schedule.delay_before(2, rand=lambda: 1.0) == pytest.approx(5.5)
    assert schedule.delay_before(8, rand=lambda: 0.5) == pytest.approx(36000)
    assert schedule.delay_before(9) is None  # then the delivery is marked failed


@pytest.mark.parametrize("bad", ["", "5,-1", "soon"])
def test_a_bad_retry_schedule_setting_is_refused(bad):
    with pytest.raises(ValidationError):
        Settings(webhook_retry_schedule=bad)


@pytest.mark.parametrize("address", BLOCKED)
def test_blocked_addresses_are_not_public(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_public(address):
    assert is_public_address(address)


@pytest.mark.parametrize("address", BLOCKED)
async def test_submission_refuses_a_name_resolving_to_a_blocked_address(address):
    resolver = StaticResolver({"hooks.example.com": ["8.8.8.8", address]})  # one bad answer is enough
    with pytest.raises(InvalidWebhookUrl):
        await check_webhook_url("https://hooks.example.com/bys", resolver=resolver)
    assert await check_webhook_url("https://hooks.example.com/bys", resolver=resolver, allow_private=True)


async def test_submission_rules_for_schemes_and_names():
    resolver = StaticResolver({"hooks.example.com": ["8.8.8.8"]})
    assert await check_webhook_url("https://hooks.example.com/bys", resolver=resolver)
    for url in ("http://hooks.example.com/bys", "ftp://hooks.example.com/", "https://nowhere.example.com/",
                "https://user:pw@hooks.example.com/", "https:///nohost"):
        with pytest.raises(InvalidWebhookUrl):
            await check_webhook_url(url, resolver=resolver)
    assert await check_webhook_url("http://hooks.example.com/bys", resolver=resolver, allow_http=True)


@pytest.mark.parametrize("address", BLOCKED)
async def test_delivery_refuses_a_name_that_now_resolves_to_a_blocked_address(address):
    sender = WebhookSender(timeout_seconds=2, resolver=StaticResolver({"hooks.example.com": [address]}))
    try:
        result = await sender.send("https://hooks.example.com/bys", BODY, {})
    finally:
        await sender.aclose()
    assert result.outcome == "blocked" and address in result.error


async def test_delivery_refuses_plain_http_and_unresolvable_names():
    sender = WebhookSender(timeout_seconds=2, resolver=StaticResolver({"hooks.example.com": ["8.8.8.8"]}))
    try:
        plain = await sender.send("http://hooks.example.com/bys", BODY, {})
        unknown = await sender.send("https://gone.example.com/bys", BODY, {})
        literal = await sender.send("https://[::ffff:169.254.169.254]/bys", BODY, {})
    finally:
        await sender.aclose()
    assert plain.outcome == "blocked" and "https" in plain.error
    assert unknown.outcome == "network_error" and "resolve" in unknown.error
    assert literal.outcome == "blocked"


NODE = shutil.which("node")
NODE_SDK = Path(__file__).resolve().parents[2] / "sdks" / "node" / "index.cjs"


@pytest.mark.skipif(NODE is None or not NODE_SDK.exists(), reason="needs node and the Node SDK")
def test_the_node_sdk_verifies_our_signatures_too():
    body = '{"event":"call.completed","eventId":"evt_1","summary":"Ouvert à 9 h"}'.encode()
    header = signature_header(body, [NEW, OLD], NOW)
    script = (
        "const {verifyWebhook} = require(process.argv[1]);"
        "const [header, body, now] = [process.argv[2], Buffer.from(process.argv[3], 'base64'), Number(process.argv[4])];"
        "console.log(JSON.stringify(process.argv.slice(5).map(s => verifyWebhook(header, body, s, 300, now))));"
    )
    result = subprocess.run(
        [NODE, "-e", script, str(NODE_SDK), header, base64.b64encode(body).decode(), str(NOW), NEW, OLD, "whsec_other"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, True, False]
