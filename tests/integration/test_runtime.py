"""The call runtime on a real store: claiming, forward-only statuses, cancel, limits, worker loss."""

from __future__ import annotations

import asyncio

import pytest

from byourside_server.api.requests import validate_call_request
from byourside_server.placement import place_call
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from byourside_server.telephony.base import DialResult
from support import new_account, open_services, running
from fakes import EchoBrain, FakeTelephony


@pytest.fixture
async def fast_services(database_url, tmp_path):
    svc = await open_services(database_url, tmp_path, lease_seconds=5, heartbeat_seconds=0.1, poll_seconds=0.05)
    yield svc
    await svc.aclose()


async def queue_call(services, account, to="+14155550123", **extra):
    keys = await services.accounts.list_keys(account.id)
    request = validate_call_request({"to": to, "objective": "Ask for the opening hours.", **extra})
    created = await place_call(services, account, keys[0], request)
    return created.call.id


def make_worker(services, telephony, brain, concurrency=4, worker_id=None):
    deps = SessionDeps(calls=services.calls, telephony=telephony, brain=brain, ring_timeout_seconds=5)
    return Worker(services, deps, concurrency=concurrency, worker_id=worker_id)


async def wait_for_status(services, account, call_id, statuses, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        call = await services.calls.get(account.id, call_id)
        if call.status.value in statuses:
            return call
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"call stayed {call.status.value}")
        await asyncio.sleep(0.02)


async def test_answered_call_completes_with_transcript_and_events(fast_services):
    services = fast_services
    account, _ = await new_account(services)
    call_id = await queue_call(services, account, fields=[{"name": "opens_at"}])
    telephony = FakeTelephony()
    async with running(make_worker(services, telephony, EchoBrain())):
        call = await wait_for_status(services, account, call_id, {"completed"})
    assert call.end_reason == "objective_met" and call.objective_met is True
    assert [t.speaker for t in call.turns][:3] == ["agent", "contact", "agent"]
    assert call.turns[1].text == "Hello?"
    assert call.extracted == {"opens_at": None}
    assert call.duration_seconds >= 1 and call.started_at and call.ended_at
    assert telephony.dials[call_id] == 1
    events = [e[0] for e in await services.calls.events(call_id)]
    assert events == ["call.dialing", "call.in_progress", "call.completed"]


@pytest.mark.parametrize(
    "result,status,reason",
    [
        (DialResult.NO_ANSWER, "no_answer", "no_answer"),
        (DialResult.BUSY, "no_answer", "busy"),
        (DialResult.DECLINED, "declined", "declined"),
        (DialResult.FAILED, "failed", "error:scripted"),
    ],
)
async def test_dial_results_map_to_statuses(fast_services, result, status, reason):
    services = fast_services
    account, _ = await new_account(services)
    call_id = await queue_call(services, account, to="+14155550150")
    telephony = FakeTelephony({"+14155550150": result})
    async with running(make_worker(services, telephony, EchoBrain())):
        call = await wait_for_status(services, account, call_id, {status})
    assert call.end_reason == reason and call.started_at is None
    assert [e[0] for e in await services.calls.events(call_id)] == ["call.dialing", f"call.{status}"]


async def test_competing_workers_dial_every_call_exactly_once(database_url, tmp_path):
    # Leases long enough that a starved event loop on a busy machine cannot lose one mid-call.
    services = await open_services(database_url, tmp_path, lease_seconds=10, heartbeat_seconds=0.2, poll_seconds=0.05)
    account, _ = await new_account(services)
    await services.accounts.set_limits(account.id, calls_per_minute=100, max_concurrent_calls=100)
    ids = [await queue_call(services, account) for _ in range(12)]
    telephony = FakeTelephony(ring_seconds=0.01)
    workers = [make_worker(services, telephony, EchoBrain(), concurrency=3, worker_id=f"w{i}") for i in range(3)]
    try:
        async with running(*workers):
            for call_id in ids:
                await wait_for_status(services, account, call_id, {"completed"}, timeout=120)
        assert sorted(telephony.dials) == sorted(ids)
        assert set(telephony.dials.values()) == {1}
    finally:
        await services.aclose()


async def test_cancel_during_conversation_hangs_up(fast_services):
    services = fast_services
    account, _ = await new_account(services)
    call_id = await queue_call(services, account)
    telephony = FakeTelephony(replies=["Hello?"] * 10_000)
    brain = EchoBrain(endless=True, pause_seconds=0.01)
    async with running(make_worker(services, telephony, brain)):
        await wait_for_status(services, account, call_id, {"in_progress"})
        await services.calls.request_cancel(account.id, call_id)
        services.signals.cancel_requested.set()
        call = await wait_for_status(services, account, call_id, {"completed"})
    assert call.end_reason == "canceled"
    assert telephony.lines[call_id].hung_up_by_us


async def test_cancel_while_ringing_fails_the_call(fast_services):
    services = fast_services
    account, _ = await new_account(services)
    call_id = await queue_call(services, account)
    telephony = FakeTelephony(ring_seconds=30)
    async with running(make_worker(services, telephony, EchoBrain())):
        await wait_for_status(services, account, call_id, {"dialing"})
        await services.calls.request_cancel(account.id, call_id)
        services.signals.cancel_requested.set()
        call = await wait_for_status(services, account, call_id, {"failed"})
    assert call.end_reason == "canceled"


async def test_max_duration_ends_the_call_with_a_goodbye(fast_services):
    services = fast_services
    account, _ = await new_account(services)
    call_id = await queue_call(services, account, maxDurationSeconds=30)
    telephony = FakeTelephony(replies=["Hello?"] * 10_000)
    async with running(make_worker(services, telephony, EchoBrain(endless=True))):
        call = await wait_for_status(services, account, call_id, {"completed"})
    assert call.end_reason == "max_duration"
    assert "time limit" in call.turns[-1].text
    assert 30 <= call.duration_seconds <= 33


async def test_brain_failure_fails_the_call(fast_services):
    services = fast_services
    account, _ = await new_account(services)
    call_id = await queue_call(services, account)
    async with running(make_worker(services, FakeTelephony(), EchoBrain(fail=True))):
        call = await wait_for_status(services, account, call_id, {"failed"})
    assert call.end_reason == "error:agent"


async def test_dialled_call_of_a_lost_worker_fails_and_is_never_redialled(fast_services):
    services = fast_services
    account, _ = await new_account(services)
    call_id = await queue_call(services, account)
    # A worker that claims, starts dialling and then vanishes (no heartbeats).
    claimed = await services.calls.claim_next("ghost", lease_seconds=0.3)
    assert claimed.id == call_id
    assert await services.calls.mark_dialing(call_id, "ghost")
    telephony = FakeTelephony()
    # A worker reaps only after reaching the store for a whole lease, so allow for that.
    async with running(make_worker(services, telephony, EchoBrain())):
        call = await wait_for_status(services, account, call_id, {"failed"}, timeout=40.0)
    assert call.end_reason == "worker_lost"
    assert telephony.dials[call_id] == 0
    # The ghost waking up later cannot write over the outcome.
    assert not await services.calls.mark_in_progress(call_id, "ghost")


async def test_undialled_call_of_a_lost_worker_is_requeued_and_dialled_once(fast_services):
    services = fast_services
    account, _ = await new_account(services)
    call_id = await queue_call(services, account)
    assert (await services.calls.claim_next("ghost", lease_seconds=0.3)).id == call_id
    telephony = FakeTelephony()
    async with running(make_worker(services, telephony, EchoBrain())):
        await wait_for_status(services, account, call_id, {"completed"}, timeout=40.0)
    assert telephony.dials[call_id] == 1
    assert not await services.calls.mark_dialing(call_id, "ghost")


async def test_statuses_only_move_forward(fast_services):
    services = fast_services
    account, _ = await new_account(services)
    call_id = await queue_call(services, account)
    assert not await services.calls.mark_in_progress(call_id, "w")  # queued -> in_progress skips dialing
    await services.calls.claim_next("w", 5)
    assert await services.calls.mark_dialing(call_id, "w")
    assert not await services.calls.mark_dialing(call_id, "w")
    assert await services.calls.mark_in_progress(call_id, "w")
    from byourside_server.domain import CallStatus
    from byourside_server.store.calls import CallOutcome

    assert await services.calls.finish(call_id, "w", CallOutcome(CallStatus.COMPLETED, "objective_met"))
    assert not await services.calls.finish(call_id, "w", CallOutcome(CallStatus.FAILED, "late"))
    assert (await services.calls.get(account.id, call_id)).status is CallStatus.COMPLETED
