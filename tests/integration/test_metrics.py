"""Per-turn latency through the runtime to the call object and to /metrics, on a real store."""

from __future__ import annotations

import httpx
import pytest

from byourside_server.api.app import create_app
from fakes import EchoBrain, FakeTelephony
from support import auth, new_account, open_services, running
from test_runtime import make_worker, queue_call, wait_for_status


@pytest.fixture
async def services(database_url, tmp_path):
    svc = await open_services(database_url, tmp_path, lease_seconds=5, heartbeat_seconds=0.1, poll_seconds=0.05,
                              metrics_token="scrape-me")
    yield svc
    await svc.aclose()


async def test_audio_call_latency_reaches_the_call_object_and_metrics(services):
    account, secret = await new_account(services)
    audio_call = await queue_call(services, account)
    async with running(make_worker(services, FakeTelephony(reply_latency_ms=650), EchoBrain())):
        await wait_for_status(services, account, audio_call, {"completed"})
    text_call = await queue_call(services, account)
    async with running(make_worker(services, FakeTelephony(), EchoBrain())):
        await wait_for_status(services, account, text_call, {"completed"})
    queued = await queue_call(services, account)  # no worker picks this one up

    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        shown = (await client.get(f"/v1/agent/calls/{audio_call}", headers=auth(secret))).json()
        latency = shown["latency"]
        assert len(latency["turns"]) == 2  # EchoBrain answers both of the callee's replies
        assert latency["turns"][0] == {"speechEndMs": latency["turns"][0]["speechEndMs"], "endpointingMs": 200,
                                       "sttMs": 100, "llmFirstTokenMs": None, "ttsFirstAudioMs": 50, "totalMs": 650}
        assert latency["p50"]["totalMs"] == 650
        assert (await client.get(f"/v1/agent/calls/{text_call}", headers=auth(secret))).json()["latency"] is None

        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers=auth(secret))  # an API key is not the metrics token
        assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
        scraped = await client.get("/metrics", headers=auth("scrape-me"))
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = scraped.text.splitlines()
    assert 'byourside_calls_active{status="queued"} 1' in lines, scraped.text
    assert 'byourside_calls_ended{status="completed"} 2' in lines
    assert 'byourside_voice_turn_latency_ms{stage="total",quantile="0.5"} 650' in lines
    assert 'byourside_voice_turn_latency_ms_count{stage="total"} 2' in lines  # the text call adds no turns
    assert 'byourside_voice_turn_latency_ms_count{stage="llm_first_token"} 0' in lines
    assert queued not in scraped.text and account.id not in scraped.text


async def test_metrics_are_open_without_a_token(database_url, tmp_path):
    services = await open_services(database_url, tmp_path)
    try:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            scraped = await client.get("/metrics")
        assert scraped.status_code == 200
        assert "byourside_voice_turn_latency_ms_count{stage=\"total\"} 0" in scraped.text
    finally:
        await services.aclose()
