"""Webhook delivery on a real store with a real HTTP receiver on loopback.

The call worker and the delivery loop run for real; retry schedules are short
and jitter-free so the tests stay fast.
"""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import AsyncExitStack

import pytest
from byourside import verify_webhook
from fakes import EchoBrain, FakeTelephony
from sqlalchemy import select
from support import make_settings, new_account, open_services, running
from webhook_receiver import Receiver, always

from byourside_server.api.requests import validate_call_request
from byourside_server.domain import CallStatus, Turn
from byourside_server.guardrails.webhook_urls import StaticResolver
from byourside_server.placement import place_call
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from byourside_server.services import build_services
from byourside_server.store import schema as t
from byourside_server.store.calls import CallOutcome, NewCall
from byourside_server.store.records import call_from_row
from byourside_server.telephony.base import DialResult
from byourside_server.webhooks.delivery import DeliveryWorker, RetrySchedule
from byourside_server.webhooks.events import (
    MAX_BODY_BYTES,
    TRUNCATED_MARK,
    enqueue_for_transition,
)
from byourside_server.webhooks.sender import AttemptResult, WebhookSender
from byourside_server.webhooks.store import WebhookRepo
from byourside_server.wire import call_to_json

FAST = RetrySchedule((0, 0.05, 0.05, 0.05), jitter=0)
TERMINAL_EVENTS = {"call.completed", "call.no_answer", "call.voicemail", "call.declined", "call.failed"}


@pytest.fixture
async def services(database_url, tmp_path):
    svc = await open_services(database_url, tmp_path, webhook_poll_seconds=0.05, lease_seconds=5)
    yield svc
    await svc.aclose()


async def queue_call(services, account, url, to="+14155550123"):
    keys = await services.accounts.list_keys(account.id)
    request = validate_call_request({"to": to, "objective": "Ask for the opening hours.", "webhookUrl": url})
    return (await place_call(services, account, keys[0], request)).call.id


def call_worker(services, telephony=None):
    deps = SessionDeps(calls=services.calls, telephony=telephony or FakeTelephony(), brain=EchoBrain(), ring_timeout_seconds=5)
    return Worker(services, deps, concurrency=4)


def deliverer(services, worker_id="d1", schedule=FAST, **sender_options):
    options = {"timeout_seconds": 2.0, "allow_http": True, "allow_private": True, **sender_options}
    return DeliveryWorker(services, worker_id=worker_id, sender=WebhookSender(**options), schedule=schedule)


def repo(services):
    return WebhookRepo(services.db, services.clock)


async def wait_deliveries(services, account, call_id, done, timeout=20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        events = await repo(services).list_for_call(account.id, call_id)
        if events and done(events):
            return events
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"deliveries not done: {events}")
        await asyncio.sleep(0.02)


def finished(events):
    return all(e["status"] != "pending" for e in events) and any(e["event"] in TERMINAL_EVENTS for e in events)


async def test_events_arrive_signed_and_verify_with_the_sdk(services):
    account, _ = await new_account(services)
    with Receiver() as receiver:
        call_id = await queue_call(services, account, receiver.url())
        async with running(call_worker(services), deliverer(services)):
            await receiver.wait_until(lambda r: len(r.requests) >= 2)
            events = await wait_deliveries(services, account, call_id, finished)
    call = await services.calls.get(account.id, call_id)
    # Events of one call may arrive in either order (delivery is concurrent); each arrives once here.
    assert sorted(r.headers["x-bys-event"] for r in receiver.requests) == ["call.completed", "call.in_progress"]
    for req in receiver.requests:
        body = req.json
        assert verify_webhook(req.headers["x-bys-signature"], req.raw, account.webhook_secret)
        assert not verify_webhook(req.headers["x-bys-signature"], req.raw + b" ", account.webhook_secret)
        assert body["eventId"] == req.headers["x-bys-event-id"] and body["eventId"].startswith("evt_")
        assert body["event"] == req.headers["x-bys-event"]
        assert req.headers["user-agent"].startswith("byourside-webhooks/")
        assert req.headers["content-type"] == "application/json"
        assert set(call_to_json(call)) <= set(body) and body["timestamp"].endswith("Z")
        assert body["callId"] == call_id
    by_event = {r.json["event"]: r.json for r in receiver.requests}
    started, ended = by_event["call.in_progress"], by_event["call.completed"]
    assert started["status"] == "in_progress" and started["summary"] is None
    # The terminal snapshot carries the outcome written in the same UPDATE.
    assert ended["status"] == "completed" and ended["summary"] == call.summary and ended["transcript"]
    assert ended["endedAt"] is not None and ended["endReason"] == call.end_reason
    assert [e["status"] for e in events] == ["delivered", "delivered"]
    assert [[a["httpStatus"] for a in e["attempts"]] for e in events] == [[200], [200]]


async def test_every_call_gets_exactly_one_terminal_event(services):
    account, _ = await new_account(services)
    telephony = FakeTelephony({"+14155550124": DialResult.NO_ANSWER, "+14155550125": DialResult.DECLINED})
    with Receiver() as receiver:
        ids = {
            to: await queue_call(services, account, receiver.url(f"/{to[1:]}"), to)
            for to in ("+14155550123", "+14155550124", "+14155550125")
        }
        # Cancelled while still queued (before any worker runs, so none can dial it first): it ends at once.
        cancel_me = await queue_call(services, account, receiver.url("/canceled"), "+14155550126")
        await services.calls.request_cancel(account.id, cancel_me)
        async with running(call_worker(services, telephony), deliverer(services)):
            for call_id in [*ids.values(), cancel_me]:
                await wait_deliveries(services, account, call_id, finished)
    by_path: dict[str, list[str]] = {}
    for req in receiver.requests:
        by_path.setdefault(req.path, []).append(req.json["event"])
    by_path = {path: sorted(events) for path, events in by_path.items()}
    assert by_path["/14155550123"] == ["call.completed", "call.in_progress"]
    assert by_path["/14155550124"] == ["call.no_answer"]
    assert by_path["/14155550125"] == ["call.declined"]
    assert by_path["/canceled"] == ["call.failed"]


async def test_retries_after_500_and_timeout_land_with_the_same_event_id(services):
    account, _ = await new_account(services)
    answers = {1: 500, 2: (200, 2.5), 3: 200}  # the second answer comes after the sender's timeout
    with Receiver(lambda _req, nth: answers[nth]) as receiver:
        call_id = await queue_call(services, account, receiver.url())
        async with running(call_worker(services), deliverer(services, timeout_seconds=1.0)):
            events = await wait_deliveries(services, account, call_id, finished)
    assert [e["event"] for e in events] == ["call.in_progress", "call.completed"]
    for event in events:
        got = receiver.of_event(event["eventId"])
        assert len(got) == 3
        assert {r.json["eventId"] for r in got} == {event["eventId"]}
        assert len({r.raw for r in got}) == 1  # the body is the snapshot, identical on every retry
        assert all(verify_webhook(r.headers["x-bys-signature"], r.raw, account.webhook_secret) for r in got)
        assert event["status"] == "delivered"
        assert [(a["attempt"], a["outcome"], a["httpStatus"]) for a in event["attempts"]] == [
            (1, "http_error", 500), (2, "timeout", None), (3, "delivered", 200)
        ]
        assert "timeout" in event["attempts"][1]["error"]
        assert all(a["durationMs"] >= 0 and a["at"] for a in event["attempts"])


async def test_410_stops_retries_for_that_event(services):
    account, _ = await new_account(services)
    with Receiver(always(410)) as receiver:
        call_id = await queue_call(services, account, receiver.url())
        loop = deliverer(services)
        async with running(call_worker(services), loop):
            events = await wait_deliveries(services, account, call_id, finished)
        assert await loop.repo.claim_due("probe", 5, 10) == []  # nothing left to attempt
    assert [e["status"] for e in events] == ["gone", "gone"]
    assert [len(e["attempts"]) for e in events] == [1, 1]
    assert len(receiver.requests) == 2


async def test_a_delivery_that_never_succeeds_is_marked_failed_after_the_schedule(services):
    account, _ = await new_account(services)
    with Receiver(always(503)) as receiver:
        call_id = await queue_call(services, account, receiver.url())
        schedule = RetrySchedule((0, 0.02, 0.02), jitter=0)
        async with running(call_worker(services), deliverer(services, schedule=schedule)):
            events = await wait_deliveries(services, account, call_id, finished)
    assert [e["status"] for e in events] == ["failed", "failed"]
    assert [[a["httpStatus"] for a in e["attempts"]] for e in events] == [[503] * 3, [503] * 3]
    assert len(receiver.requests) == 6 and all(e["nextAttemptAt"] is None for e in events)


async def _call_with_unchecked_url(services, account, url):
    """A call whose URL passed submission earlier (the store does not check URLs)."""
    new = NewCall(
        to_number="+14155550123", from_number="+14155550100", objective="Ask for the opening hours.", context=None,
        fields=(), webhook_url=url, voice="alloy", language="en-US", language_source="explicit",
        max_duration_seconds=60, metadata={},
    )
    created = await services.calls.create(account, new, idempotency_key=None, request_hash=None, respond=lambda c: {})
    return created.call.id


@pytest.mark.parametrize("allow_private", [False, True])
async def test_dns_rebinding_to_a_private_address_is_blocked_at_delivery(services, allow_private):
    account, _ = await new_account(services)
    resolver = StaticResolver({"hooks.example.test": ["8.8.8.8"]})  # public when the URL was accepted
    with Receiver() as receiver:
        call_id = await _call_with_unchecked_url(services, account, receiver.url(host="hooks.example.test"))
        resolver.point("hooks.example.test", "127.0.0.1")  # ... and loopback by the time it is delivered
        loop = deliverer(services, resolver=resolver, allow_private=allow_private, schedule=RetrySchedule((0,), 0))
        async with running(call_worker(services), loop):
            events = await wait_deliveries(services, account, call_id, finished)
    assert "hooks.example.test" in resolver.lookups
    if allow_private:  # the control: the same setup delivers, pinned to 127.0.0.1 with the original Host
        assert [e["status"] for e in events] == ["delivered", "delivered"]
        assert {r.headers["host"] for r in receiver.requests} == {f"hooks.example.test:{receiver.port}"}
    else:
        assert receiver.requests == []
        assert [e["status"] for e in events] == ["failed", "failed"]
        for event in events:
            (attempt,) = event["attempts"]
            assert attempt["outcome"] == "blocked" and "127.0.0.1" in attempt["error"]


async def test_two_delivery_loops_never_send_the_same_attempt_twice_at_once(services, database_url, tmp_path):
    account, _ = await new_account(services)
    # Every event fails once, then succeeds slowly: plenty of chances to overlap.
    with Receiver(lambda _req, nth: 500 if nth == 1 else (200, 0.05)) as receiver:
        call_id = await _call_with_unchecked_url(services, account, receiver.url())
        async with services.db.write() as conn:
            row = (await conn.execute(select(t.calls).where(t.calls.c.id == call_id))).mappings().one()
            call = call_from_row(row)
            event_ids = [await enqueue_for_transition(conn, call, CallStatus.COMPLETED, services.clock.now()) for _ in range(24)]
        async with AsyncExitStack() as stack:
            other = build_services(make_settings(database_url, tmp_path, webhook_poll_seconds=0.05))  # its own pool
            stack.push_async_callback(other.aclose)
            # Long send timeouts (hence leases): a starved event loop on a busy machine must not let
            # a lease lapse mid-attempt, which would rightly cause a retry and spoil the count.
            loops = [deliverer(services, "loop-a", timeout_seconds=15.0), deliverer(other, "loop-b", timeout_seconds=15.0)]
            async with running(*loops):
                await receiver.wait_until(lambda r: all(len(r.of_event(e)) >= 2 for e in event_ids))
                events = await wait_deliveries(services, account, call_id, lambda ev: all(e["status"] == "delivered" for e in ev))
    assert len(events) == 24
    for event_id in event_ids:
        assert len(receiver.of_event(event_id)) == 2
        assert receiver.max_in_flight[event_id] == 1
    async with services.db.read() as conn:
        workers = (await conn.execute(select(t.webhook_attempts.c.worker_id))).scalars().all()
    print("attempts per delivery loop:", {w: workers.count(w) for w in set(workers)})
    attempts = [a for e in events for a in e["attempts"]]
    assert sorted((a["attempt"], a["outcome"]) for a in attempts) == [(1, "http_error")] * 24 + [(2, "delivered")] * 24


async def test_an_attempt_whose_loop_vanished_is_made_again_once_the_lease_expires(services):
    account, _ = await new_account(services)
    with Receiver() as receiver:
        call_id = await _call_with_unchecked_url(services, account, receiver.url())
        await services.calls.request_cancel(account.id, call_id)  # queues the call.failed event
        store = repo(services)
        (dead,) = await store.claim_due("vanished-loop", 1.0, 10)  # claimed, then its process died
        assert await store.claim_due("other", 5, 10) == []  # leased: nobody else may attempt it yet
        async with running(deliverer(services, "survivor")):
            events = await wait_deliveries(services, account, call_id, lambda ev: ev[0]["status"] == "delivered")
        # The vanished loop's late result is refused: the attempt belongs to the survivor now.
        late = AttemptResult("http_error", 500, "HTTP 500", 5)
        assert await store.record_attempt(dead, "vanished-loop", services.clock.now(), late, 1.0) is None
    (event,) = events
    assert dead.id == event["eventId"] and dead.attempt == 1
    assert [(a["attempt"], a["outcome"]) for a in event["attempts"]] == [(1, "delivered")]
    assert [r.event_id for r in receiver.requests] == [dead.id]


async def test_the_terminal_snapshot_comes_from_the_finishing_update_and_stays_under_the_size_cap(services):
    account, _ = await new_account(services)
    call_id = await _call_with_unchecked_url(services, account, "https://hooks.example.com/bys")
    assert (await services.calls.claim_next("w", 30)).id == call_id
    assert await services.calls.mark_dialing(call_id, "w")
    turns = [Turn("contact" if i % 2 else "agent", "word " * 400, i * 1000, i * 1000 + 900) for i in range(600)]
    outcome = CallOutcome(CallStatus.COMPLETED, "objective_met", summary="Opens at nine.", turns=turns, duration_seconds=600)
    assert await services.calls.finish(call_id, "w", outcome)
    async with services.db.read() as conn:
        (payload,) = (await conn.execute(select(t.webhook_deliveries.c.payload))).scalars().all()
    body = json.loads(payload)
    assert len(payload.encode()) <= MAX_BODY_BYTES
    assert body["event"] == "call.completed" and body["summary"] == "Opens at nine." and body["durationSeconds"] == 600
    assert body["turns"] is None and body["transcript"].startswith("Agent: word word")
    assert body["transcript"].endswith(TRUNCATED_MARK)


async def test_a_slow_receiver_does_not_hold_up_other_deliveries(services):
    account, _ = await new_account(services)
    release = threading.Event()
    with Receiver(lambda _req, _nth: 200 if release.wait(20) else 500) as slow, Receiver() as fast:
        slow_call = await _call_with_unchecked_url(services, account, slow.url())
        await services.calls.request_cancel(account.id, slow_call)
        async with running(deliverer(services, timeout_seconds=30)):
            await slow.wait_until(lambda r: len(r.requests) == 1)  # its attempt hangs until released
            fast_call = await _call_with_unchecked_url(services, account, fast.url())
            await services.calls.request_cancel(account.id, fast_call)
            (event,) = await wait_deliveries(services, account, fast_call, finished)
            assert event["status"] == "delivered" and slow.in_flight[slow.requests[0].event_id] == 1
            release.set()
            await wait_deliveries(services, account, slow_call, finished)
