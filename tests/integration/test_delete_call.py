"""DELETE /v1/agent/calls/{id} on a real store (SQLite and PostgreSQL): an ended call's personal data
is erased (its recording object too), the same body answers every time, another account's call is
not found, a running call answers 409 call_active, and a webhook still retrying sends the erased
shape once the call is deleted."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from recorded_calls import RecordingTelephony, place_and_conduct
from sqlalchemy import select
from support import auth, new_account, open_services, running
from webhook_receiver import Receiver

from byourside_server.api.app import create_app
from byourside_server.store import schema as t
from byourside_server.webhooks.delivery import DeliveryWorker, RetrySchedule
from byourside_server.webhooks.sender import WebhookSender

TO = "+14155550123"
BODY = {"to": TO, "objective": "Ask what time they open tomorrow.", "context": "Ask for Dana Whitfield.",
        "fields": [{"name": "opening_time", "type": "string"}], "metadata": {"crm": "lead-42"}}


@pytest.fixture
async def world(database_url, tmp_path):
    services = await open_services(database_url, tmp_path, webhook_poll_seconds=0.05)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        yield services, api
    await services.aclose()


def assert_erased(call: dict) -> None:
    assert call["erasedAt"] is not None
    assert call["to"] == "+1415***0123" and call["from"] == "+1415***0100"
    assert call["transcript"] is None and call["turns"] is None and call["summary"] is None
    assert call["recordingUrl"] is None and call["evidence"] is None
    assert call["extracted"] == {"opening_time": None}
    assert call["objective"] == "" and call["context"] is None
    assert "Dana" not in str(call) and "nine" not in str(call)


async def test_delete_erases_personal_data_and_answers_the_same_body_again(world, tmp_path):
    services, api = world
    _, secret = await new_account(services)
    call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "line"), BODY)
    assert call["status"] == "completed" and "nine" in call["transcript"] and call["recordingUrl"]
    stored = services.settings.data_dir / "recordings" / f"{call['id']}.wav"
    assert stored.exists()

    first = await api.delete(f"/v1/agent/calls/{call['id']}", headers=auth(secret))
    assert first.status_code == 200, first.text
    erased = first.json()
    assert_erased(erased)
    # the outcome stays
    for key in ("status", "endReason", "durationSeconds", "objectiveMet", "createdAt", "endedAt", "metadata"):
        assert erased[key] == call[key], key
    assert not stored.exists()

    again = await api.delete(f"/v1/agent/calls/{call['id']}", headers=auth(secret))
    assert again.status_code == 200 and again.json() == erased
    assert (await api.get(f"/v1/agent/calls/{call['id']}", headers=auth(secret))).json() == erased
    recording = await api.get(f"/v1/agent/calls/{call['id']}/recording", headers=auth(secret))
    assert recording.status_code == 404


async def test_another_accounts_call_is_not_found_and_stays_whole(world, tmp_path):
    services, api = world
    _, owner_secret = await new_account(services)
    _, other_secret = await new_account(services, caller_id="+14155550101")
    call = await place_and_conduct(services, api, owner_secret, RecordingTelephony(tmp_path / "line"), BODY)
    refused = await api.delete(f"/v1/agent/calls/{call['id']}", headers=auth(other_secret))
    assert refused.status_code == 404 and refused.json()["error"] == "not_found"
    missing = await api.delete("/v1/agent/calls/00000000-0000-0000-0000-000000000000", headers=auth(owner_secret))
    assert missing.status_code == 404
    whole = (await api.get(f"/v1/agent/calls/{call['id']}", headers=auth(owner_secret))).json()
    assert whole["transcript"] == call["transcript"] and whole["to"] == TO and whole["erasedAt"] is None
    assert whole["recordingUrl"] is not None


async def test_a_call_not_yet_ended_answers_409_call_active_and_is_untouched(world):
    services, api = world
    _, secret = await new_account(services)
    created = await api.post("/v1/agent/calls", json=BODY, headers=auth(secret))  # no worker: it stays queued
    call_id = created.json()["callId"]
    answer = await api.delete(f"/v1/agent/calls/{call_id}", headers=auth(secret))
    assert answer.status_code == 409 and answer.json()["error"] == "call_active"
    call = (await api.get(f"/v1/agent/calls/{call_id}", headers=auth(secret))).json()
    assert call["to"] == TO and call["context"] == BODY["context"] and call["erasedAt"] is None


async def test_a_webhook_still_retrying_sends_the_erased_shape_after_the_delete(world, tmp_path):
    services, api = world
    _, secret = await new_account(services)
    state = {"answer": 503}
    with Receiver(lambda _request, _nth: state["answer"]) as receiver:
        call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "line"),
                                       {**BODY, "webhookUrl": receiver.url()})
        def sender() -> WebhookSender:  # each delivery loop closes its own when it stops
            return WebhookSender(timeout_seconds=5.0, allow_http=True, allow_private=True)
        schedule = RetrySchedule((0,) + (0.2,) * 40, jitter=0)
        # The terminal event fails once (the receiver is down) and waits for its retry.
        async with running(DeliveryWorker(services, worker_id="d1", sender=sender(), schedule=schedule)):
            await receiver.wait_until(lambda r: "call.completed" in r.events())
        before = [r for r in receiver.requests if r.json["event"] == "call.completed"]
        assert before[0].json["transcript"] and before[0].json["to"] == TO  # what it carried until now
        async with services.db.read() as conn:
            pending = (await conn.execute(select(t.webhook_deliveries.c.status).where(
                t.webhook_deliveries.c.event == "call.completed"))).scalar_one()
        assert pending == "pending"

        deleted = await api.delete(f"/v1/agent/calls/{call['id']}", headers=auth(secret))
        assert deleted.status_code == 200
        sent_before = len(receiver.requests)
        state["answer"] = 200
        async with running(DeliveryWorker(services, worker_id="d2", sender=sender(), schedule=schedule)):
            await receiver.wait_until(
                lambda r: {"call.in_progress", "call.completed"} <= set(r.events()[sent_before:]))
    after = receiver.requests[sent_before:]
    assert after and all(r.event_id == before[0].event_id for r in after if r.json["event"] == "call.completed")
    for request in after:
        body = request.json
        assert body["transcript"] is None and body["to"] == "+1415***0123" and "Dana" not in request.raw.decode()
        assert body["erasedAt"] == deleted.json()["erasedAt"]
        if body["event"] == "call.completed":
            assert body["extracted"] == {"opening_time": None} and body["summary"] is None
    async with services.db.read() as conn:  # what is kept of every event of the call, sent or not
        payloads = (await conn.execute(select(t.webhook_deliveries.c.payload).where(
            t.webhook_deliveries.c.call_id == call["id"]))).scalars().all()
    assert payloads and not any(TO in p or "Dana" in p or "nine" in p for p in payloads)


async def test_the_python_sdk_deletes_a_call(world, tmp_path):
    """The SDK's own request and error handling, carried to the real app (the SDK is synchronous: it runs
    in a thread, and its transport hands each request to the app on this event loop)."""
    import byourside

    services, api = world
    _, secret = await new_account(services)
    call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "line"), BODY)
    loop = asyncio.get_running_loop()

    def transport(method, url, headers, data):
        answer = asyncio.run_coroutine_threadsafe(
            api.request(method, url.replace("http://sdk.test", ""), headers=headers, content=data), loop).result()
        return answer.status_code, answer.json()

    client = byourside.Client(secret, base_url="http://sdk.test", transport=transport)
    erased = await asyncio.to_thread(client.delete_call, call["id"])
    assert_erased(erased)
    assert await asyncio.to_thread(client.delete_call, call["id"]) == erased
    queued = await api.post("/v1/agent/calls", json=BODY, headers=auth(secret))
    with pytest.raises(byourside.ByoursideError) as refused:
        await asyncio.to_thread(client.delete_call, queued.json()["callId"])
    assert refused.value.code == "call_active" and refused.value.status == 409
