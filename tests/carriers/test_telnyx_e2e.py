"""Calls through Telnyx, scaled out: an API process and a separate worker process (BYS_TELEPHONY=telnyx) on
PostgreSQL, the fake Telnyx's signed webhooks and media streams reaching the worker on its own address."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fake_telnyx import FakeTelnyx
from test_twilio_e2e import deploy, undeploy
from byourside_server.telephony.simulator.scenarios import load_scenarios

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture(scope="module")
def deployment(postgres_url, voice_factory, voice_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("telnyx-e2e")
    fake = FakeTelnyx(load_scenarios(), voice_factory, numbers=("+14155550100",)).start_in_thread()
    try:
        running = deploy(fake, tmp, postgres_url, voice_dir, {
            "BYS_TELEPHONY": "telnyx", "BYS_TELNYX_API_KEY": fake.api_key, "BYS_TELNYX_PUBLIC_KEY": fake.public_key,
            "BYS_TELNYX_CONNECTION_ID": fake.connection_id, "BYS_TELNYX_API_URL": fake.api_url})
    except BaseException:
        fake.stop_thread()
        raise
    yield running
    undeploy(running)
    fake.stop_thread()


@pytest.mark.parametrize(("number", "status", "end_reason"), [
    ("+14155550161", "no_answer", "busy"),
    ("+14155550162", "declined", "declined"),
    ("+14155550163", "failed", "error:sip_503"),
])
def test_calls_that_are_not_answered(deployment, number, status, end_reason):
    call = deployment.call(number, "Ask for the opening hours.")
    assert (call["status"], call["endReason"]) == (status, end_reason), call


@pytest.mark.voice
def test_the_demo_restaurant_call_completes_over_audio(deployment):
    fields = [{"name": "table_available", "type": "boolean", "description": "whether a table for two is free tonight"},
              {"name": "tasting_menu_price", "type": "number", "description": "the tasting menu's price per person"}]
    call = deployment.call("+14155550123", "Ask whether they have a table for two tonight and how much the tasting "
                           "menu costs.", timeout=300, fields=fields)
    assert call["status"] == "completed", call
    assert "copper pot" in call["transcript"].lower(), call["transcript"]
    assert call["extracted"] == {"table_available": True, "tasting_menu_price": 85}, call["transcript"]


def test_a_forged_webhook_is_refused(deployment):
    url = f"{deployment.worker_url}/carriers/telnyx/events/some-token"
    body = json.dumps({"data": {"event_type": "call.hangup", "payload": {"hangup_cause": "normal_clearing"}}}).encode()
    stamp = str(int(time.time()))
    forged = base64.b64encode(Ed25519PrivateKey.generate().sign(stamp.encode() + b"|" + body)).decode()
    answer = httpx.post(url, content=body, headers={"telnyx-timestamp": stamp, "telnyx-signature-ed25519": forged})
    assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
    assert httpx.post(url, content=body).status_code == 403


def test_numbers_never_reach_the_logs(deployment):
    logs = deployment.logs()
    assert "telnyx_call_created" in logs
    for number in ("+14155550161", "+14155550100", "4155550161"):
        assert number not in logs
