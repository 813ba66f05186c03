"""Responsible calling on a real store (SQLite and PostgreSQL) with real workers: scheduled calls,
calling hours in the callee's time zone, the do-not-call list and opt-outs, retries by outcome.

The clock is the system clock moved to a chosen moment (``ShiftedClock``), so "03:00 in San
Francisco" is a real instant the store, the workers and the rules all see; it is only moved
while no call is in hand."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import select

from byourside_server.api.app import create_app
from byourside_server.clock import SystemClock
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from byourside_server.store import schema as t
from byourside_server.telephony.base import DialOutcome, DialRequest, DialResult, Telephony
from fakes import EchoBrain, FakeTelephony
from support import auth, new_account, open_services, running

UTC = timezone.utc
SF = "+14155551234"  # San Francisco: America/Los_Angeles (UTC-8 in December)
LONDON = "+442071234567"
TUESDAY_10AM_SF = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
TUESDAY_3AM_SF = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)  # 11:00 in London


class ShiftedClock(SystemClock):
    """The system clock, moved to a chosen moment; time runs on from there."""

    def __init__(self, at: datetime) -> None:
        self.move_to(at)

    def move_to(self, at: datetime) -> None:
        self._offset = at - datetime.now(UTC)

    def now(self) -> datetime:
        return super().now() + self._offset


@pytest.fixture
async def world(database_url, tmp_path):
    clock = ShiftedClock(TUESDAY_10AM_SF)
    services = await open_services(database_url, tmp_path, clock=clock, lease_seconds=5, heartbeat_seconds=0.1,
                                   poll_seconds=0.05)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        yield services, clock, api
    await services.aclose()


def worker(services, telephony, brain=None, concurrency=4):
    deps = SessionDeps(calls=services.calls, telephony=telephony, brain=brain or EchoBrain(), ring_timeout_seconds=5,
                       gate=services.compliance)
    return Worker(services, deps, concurrency=concurrency)


async def place(api, secret, to=SF, **extra):
    response = await api.post("/v1/agent/calls", json={"to": to, "objective": "Confirm tomorrow's appointment.", **extra},
                              headers=auth(secret))
    return response


async def get(api, secret, call_id):
    response = await api.get(f"/v1/agent/calls/{call_id}", headers=auth(secret))
    assert response.status_code == 200, response.text
    return response.json()


async def until(check, timeout=30.0):
    """Poll ``check`` until it returns something truthy (a safety net for a slow machine, not a speed test)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.03)


async def ended(api, secret, call_id):
    async def check():
        call = await get(api, secret, call_id)
        return call if call["endedAt"] else None
    return await until(check)


async def call_count(services) -> int:
    async with services.db.read() as conn:
        return len((await conn.execute(select(t.calls.c.id))).all())


async def settle(services, rounds=6):
    """Let workers poll a few times (enough to have claimed anything claimable)."""
    for _ in range(rounds):
        await asyncio.sleep(services.settings.poll_seconds)


# scheduling


async def test_a_scheduled_call_waits_then_is_dialled_once(world):
    services, clock, api = world
    _, secret = await new_account(services)
    response = await place(api, secret, scheduledAt="2026-12-01T11:30:00-08:00")  # 19:30 UTC
    assert response.status_code == 201, response.text
    call_id = response.json()["callId"]
    call = await get(api, secret, call_id)
    assert call["status"] == "queued" and call["scheduledAt"] == "2026-12-01T19:30:00.000Z"
    assert call["heldUntil"] == "2026-12-01T19:30:00.000Z" and call["holdReason"] == "scheduled"
    telephony = FakeTelephony()
    async with running(worker(services, telephony)):
        await settle(services)
        assert telephony.dials[call_id] == 0 and (await get(api, secret, call_id))["status"] == "queued"
        clock.move_to(datetime(2026, 12, 1, 19, 30, 1, tzinfo=UTC))
        call = await ended(api, secret, call_id)
    assert call["status"] == "completed" and telephony.dials[call_id] == 1
    assert call["holdReason"] is None and call["heldUntil"] is None  # shown only while it waits


async def test_a_scheduled_call_can_be_canceled_while_it_waits(world):
    services, clock, api = world
    _, secret = await new_account(services)
    call_id = (await place(api, secret, scheduledAt="2026-12-01T19:00:00Z")).json()["callId"]
    canceled = await api.post(f"/v1/agent/calls/{call_id}/cancel", headers=auth(secret))
    assert canceled.status_code == 200 and canceled.json()["status"] == "failed"
    assert canceled.json()["endReason"] == "canceled"
    telephony = FakeTelephony()
    clock.move_to(datetime(2026, 12, 1, 19, 0, 1, tzinfo=UTC))
    async with running(worker(services, telephony)):
        await settle(services)
    assert telephony.dials[call_id] == 0


@pytest.mark.parametrize("value", ["2026-12-01T19:00:00", "tomorrow", "2026-02-30T10:00:00Z", 1764615600,
                                   "2027-06-01T10:00:00Z"])  # no offset, words, no such day, a number, 6 months out
async def test_a_bad_scheduled_at_is_one_invalid_request_and_creates_nothing(world, value):
    services, _, api = world
    _, secret = await new_account(services)
    response = await place(api, secret, scheduledAt=value)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request", response.text
    assert "scheduledAt" in response.json()["message"]
    assert await call_count(services) == 0


class GatedTelephony(Telephony):
    """Each dial rings until the test lets it end (then: no answer), so calls stay on the line."""

    name = "gated"

    def __init__(self) -> None:
        self.dials: Counter[str] = Counter()
        self._gates: dict[str, asyncio.Event] = {}

    def _gate(self, call_id: str) -> asyncio.Event:
        return self._gates.setdefault(call_id, asyncio.Event())

    async def dial(self, request: DialRequest) -> DialOutcome:
        self.dials[request.call_id] += 1
        await self._gate(request.call_id).wait()
        return DialOutcome(DialResult.NO_ANSWER, reason="scripted")

    def release(self, call_id: str) -> None:
        self._gate(call_id).set()


async def test_scheduled_calls_count_against_limits_when_they_start(world):
    services, clock, api = world
    account, secret = await new_account(services)
    await services.accounts.set_limits(account.id, max_concurrent_calls=2, calls_per_minute=100)
    ids = []
    for _ in range(6):  # more than the concurrent limit: none of them is active yet
        response = await place(api, secret, scheduledAt="2026-12-01T19:00:00Z")
        assert response.status_code == 201, response.text
        ids.append(response.json()["callId"])
    now_ids = [(await place(api, secret)).json()["callId"] for _ in range(2)]  # two fit beside the six waiting
    refused = await place(api, secret)
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    for call_id in now_ids:
        await api.post(f"/v1/agent/calls/{call_id}/cancel", headers=auth(secret))

    # When they fall due, the claim keeps the account at two calls on the line, though the worker has room for 8.
    telephony = GatedTelephony()
    clock.move_to(datetime(2026, 12, 1, 19, 0, 1, tzinfo=UTC))
    async with running(worker(services, telephony, concurrency=8)):
        released: set[str] = set()
        for _ in range(3):
            busy = await until(lambda: _busy(services, account.id, want=2, besides=released))
            await settle(services)
            assert len(await _busy(services, account.id, besides=released)) == 2
            for call_id in busy:
                telephony.release(call_id)
            released.update(busy)
        await until(lambda: _all_ended(services, ids))
    assert [telephony.dials[i] for i in ids] == [1] * 6


async def _busy(services, account_id, want=None, besides=frozenset()):
    """The account's calls on the line (ignoring ``besides``: released, about to end); with ``want``,
    None unless there are exactly that many."""
    c = t.calls.c
    async with services.db.read() as conn:
        rows = [i for i in (await conn.execute(select(c.id).where(
            c.account_id == account_id, c.status.in_(["dialing", "in_progress"])))).scalars().all() if i not in besides]
    return rows if want is None or len(rows) == want else None


async def _all_ended(services, ids):
    c = t.calls.c
    async with services.db.read() as conn:
        rows = (await conn.execute(select(c.ended_at).where(c.id.in_(ids)))).scalars().all()
    return all(r is not None for r in rows)


# calling hours


async def test_a_call_where_it_is_night_is_held_until_morning_and_shows_why(world):
    services, clock, api = world
    clock.move_to(TUESDAY_3AM_SF)
    _, secret = await new_account(services)
    night = (await place(api, secret, to=SF)).json()["callId"]
    day = (await place(api, secret, to=LONDON)).json()["callId"]  # 11:00 in London: called at once
    call = await get(api, secret, night)
    assert call["status"] == "queued" and call["holdReason"] == "calling_hours"
    assert call["heldUntil"] == "2026-12-01T16:00:00.000Z"  # 08:00 in San Francisco
    telephony = FakeTelephony()
    async with running(worker(services, telephony)):
        assert (await ended(api, secret, day))["status"] == "completed"
        await settle(services)
        assert telephony.dials[night] == 0
        clock.move_to(datetime(2026, 12, 1, 16, 0, 1, tzinfo=UTC))
        assert (await ended(api, secret, night))["status"] == "completed"
    assert telephony.dials[night] == 1


async def test_strict_calling_hours_refuse_with_retry_after(world):
    services, clock, api = world
    clock.move_to(TUESDAY_3AM_SF)
    _, secret = await new_account(services)
    response = await place(api, secret, callingHours="strict")
    assert response.status_code == 409 and response.json()["error"] == "outside_calling_hours"
    # Until 08:00 there: five hours from 03:00, less the moments the test took so far.
    assert 5 * 3600 - 600 < int(response.headers["retry-after"]) <= 5 * 3600
    assert await call_count(services) == 0
    assert (await place(api, secret, to=LONDON, callingHours="strict")).status_code == 201
    bad = await place(api, secret, callingHours="never")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"


async def test_account_calling_hours_and_days(world):
    services, clock, api = world
    _, secret = await new_account(services)
    shown = (await api.get("/v1/agent/calling-hours", headers=auth(secret))).json()
    assert shown == {"start": "08:00", "end": "21:00", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                     "source": "default"}
    put = await api.put("/v1/agent/calling-hours", json={"start": "09:00", "end": "17:00", "days": ["mon", "tue", "wed",
                                                                                                     "thu", "fri"]},
                        headers=auth(secret))
    assert put.status_code == 200 and put.json()["source"] == "account"
    clock.move_to(datetime(2026, 12, 5, 20, 0, tzinfo=UTC))  # Saturday noon in San Francisco
    call = await get(api, secret, (await place(api, secret)).json()["callId"])
    assert call["heldUntil"] == "2026-12-07T17:00:00.000Z"  # Monday 09:00 there
    for body in ({"start": "17:00", "end": "09:00"}, {"start": "9", "end": "17:00"}, {"start": "09:00"},
                 {"start": "09:00", "end": "17:00", "days": ["someday"]}, {"start": "09:00", "end": "17:00", "x": 1}):
        bad = await api.put("/v1/agent/calling-hours", json=body, headers=auth(secret))
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_request", body
    reset = await api.delete("/v1/agent/calling-hours", headers=auth(secret))
    assert reset.json()["source"] == "default"


async def test_a_call_that_waited_past_the_window_is_held_again_before_dialling(world):
    services, clock, api = world
    clock.move_to(datetime(2026, 12, 2, 4, 59, tzinfo=UTC))  # 20:59 in San Francisco: still open
    _, secret = await new_account(services)
    call_id = (await place(api, secret)).json()["callId"]
    assert (await get(api, secret, call_id))["holdReason"] is None
    clock.move_to(datetime(2026, 12, 2, 5, 5, tzinfo=UTC))  # no worker was free until 21:05
    telephony = FakeTelephony()
    async with running(worker(services, telephony)):
        call = await until(lambda: _held(api, secret, call_id))
    assert call["heldUntil"] == "2026-12-02T16:00:00.000Z" and telephony.dials[call_id] == 0


async def _held(api, secret, call_id):
    call = await get(api, secret, call_id)
    return call if call["holdReason"] == "calling_hours" else None


# do-not-call


async def test_suppressed_numbers_are_refused_at_placement(world):
    services, _, api = world
    _, secret = await new_account(services)
    other, other_secret = await new_account(services)
    added = await api.post("/v1/agent/suppressions", json={"numbers": [SF, SF, LONDON], "note": "asked by email"},
                           headers=auth(secret))
    assert added.status_code == 200 and added.json() == {"added": 2, "alreadyListed": 0}
    again = await api.post("/v1/agent/suppressions", json={"number": SF}, headers=auth(secret))
    assert again.json() == {"added": 0, "alreadyListed": 1}
    refused = await place(api, secret)
    assert refused.status_code == 403 and refused.json()["error"] == "destination_suppressed"
    assert await call_count(services) == 0
    assert (await place(api, other_secret)).status_code == 201  # another account's list is its own
    entry = (await api.get("/v1/agent/suppressions/%2B14155551234", headers=auth(secret))).json()
    assert entry["number"] == SF and entry["source"] == "api" and entry["note"] == "asked by email"
    removed = await api.delete("/v1/agent/suppressions/%2B14155551234", headers=auth(secret))
    assert removed.status_code == 200
    assert (await api.delete("/v1/agent/suppressions/%2B14155551234", headers=auth(secret))).status_code == 404
    assert (await place(api, secret)).status_code == 201


async def test_suppression_requests_are_validated_whole(world):
    services, _, api = world
    _, secret = await new_account(services)
    bad = await api.post("/v1/agent/suppressions", json={"numbers": [SF, "415 555 1234"]}, headers=auth(secret))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_number" and "numbers[1]" in bad.json()["message"]
    for body in ({}, {"numbers": []}, {"numbers": SF}, {"numbers": [SF], "note": 5}):
        response = await api.post("/v1/agent/suppressions", json=body, headers=auth(secret))
        assert response.status_code == 400 and response.json()["error"] == "invalid_request", body
    listed = (await api.get("/v1/agent/suppressions", headers=auth(secret))).json()
    assert listed == {"suppressions": [], "nextCursor": None}
    assert (await api.get("/v1/agent/suppressions?cursor=bogus", headers=auth(secret))).status_code == 400
    assert (await api.get("/v1/agent/suppressions")).status_code == 401


async def test_csv_import_reports_bad_rows_and_lists_in_pages(world):
    services, _, api = world
    _, secret = await new_account(services)
    rows = "name,number\nAna,+14155551234\nBen,555-1234\n\nCai,+442071234567\nDee,+12125551234\nEve,+14155551234\n"
    response = await api.post("/v1/agent/suppressions", content=rows.encode(),
                              headers={**auth(secret), "Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["added"] == 3 and report["alreadyListed"] == 0
    assert report["rejected"] == [{"row": 3, "error": "invalid_number", "message": report["rejected"][0]["message"]}]
    first = (await api.get("/v1/agent/suppressions?limit=2", headers=auth(secret))).json()
    assert [s["number"] for s in first["suppressions"]] == ["+12125551234", "+14155551234"]
    assert all(s["source"] == "csv" for s in first["suppressions"])
    rest = (await api.get(f"/v1/agent/suppressions?limit=2&cursor={first['nextCursor']}", headers=auth(secret))).json()
    assert [s["number"] for s in rest["suppressions"]] == [LONDON] and rest["nextCursor"] is None
    broken = await api.post("/v1/agent/suppressions", content=b"\xff\xfe+1415\x00",
                            headers={**auth(secret), "Content-Type": "text/csv"})
    assert broken.status_code == 400 and broken.json()["error"] == "invalid_request"
    empty = await api.post("/v1/agent/suppressions", content=b"number\n",
                           headers={**auth(secret), "Content-Type": "text/csv"})
    assert empty.status_code == 400


async def test_a_number_suppressed_while_its_call_waits_is_never_dialled(world):
    services, clock, api = world
    _, secret = await new_account(services)
    call_id = (await place(api, secret, scheduledAt="2026-12-01T19:00:00Z")).json()["callId"]
    await api.post("/v1/agent/suppressions", json={"numbers": [SF]}, headers=auth(secret))
    clock.move_to(datetime(2026, 12, 1, 19, 0, 1, tzinfo=UTC))
    telephony = FakeTelephony()
    async with running(worker(services, telephony)):
        call = await ended(api, secret, call_id)
    assert call["status"] == "failed" and call["endReason"] == "suppressed" and telephony.dials[call_id] == 0


async def test_an_opt_out_spoken_mid_call_suppresses_the_number_and_stops_retries(world):
    services, _, api = world
    _, secret = await new_account(services)
    telephony = FakeTelephony(replies=("Hello?", "Please take me off your list and stop calling me.", "Bye."))
    response = await place(api, secret, webhookUrl="http://127.0.0.1:9/hook",
                           retry={"on": ["failed", "no_answer"], "maxAttempts": 3, "backoffMinutes": 5})
    call_id = response.json()["callId"]
    async with running(worker(services, telephony)):
        call = await ended(api, secret, call_id)
    assert call["optOut"] is True and call["attempts"] is None
    entry = (await api.get("/v1/agent/suppressions/%2B14155551234", headers=auth(secret))).json()
    assert entry["source"] == "opt_out" and entry["callId"] == call_id
    assert (await place(api, secret)).json()["error"] == "destination_suppressed"
    payload = await _terminal_payload(services, call_id)
    assert payload["optOut"] is True and payload["attempt"] == 1


async def test_calls_without_an_opt_out_are_not_marked(world):
    services, _, api = world
    _, secret = await new_account(services)
    call_id = (await place(api, secret)).json()["callId"]
    async with running(worker(services, FakeTelephony())):
        call = await ended(api, secret, call_id)
    assert call["optOut"] is False
    assert (await api.get("/v1/agent/suppressions", headers=auth(secret))).json()["suppressions"] == []


async def _terminal_payload(services, call_id):
    d = t.webhook_deliveries.c
    async with services.db.read() as conn:
        rows = (await conn.execute(select(d.event, d.payload).where(d.call_id == call_id))).all()
    terminal = [json.loads(r.payload) for r in rows if r.event != "call.in_progress"]
    assert len(terminal) == 1
    return terminal[0]


# retries


async def test_no_answer_is_retried_as_linked_calls_until_max_attempts(world):
    services, clock, api = world
    _, secret = await new_account(services)
    telephony = FakeTelephony({SF: DialResult.NO_ANSWER})
    root = (await place(api, secret, webhookUrl="http://127.0.0.1:9/hook",
                        retry={"on": ["no_answer"], "maxAttempts": 3, "backoffMinutes": [10, 30]})).json()["callId"]
    async with running(worker(services, telephony)):
        first = await ended(api, secret, root)
        assert first["status"] == "no_answer" and first["attempt"] == 1 and first["attemptOf"] is None
        assert len(first["attempts"]) == 2 and first["attempts"][0] == root
        second_id = first["attempts"][1]
        second = await get(api, secret, second_id)
        assert second["status"] == "queued" and second["attempt"] == 2 and second["attemptOf"] == root
        assert second["holdReason"] == "retry_backoff" and second["retry"] == first["retry"]
        assert second["objective"] == first["objective"] and second["to"] == SF
        waited = datetime.fromisoformat(second["heldUntil"]) - datetime.fromisoformat(first["endedAt"])
        assert waited == timedelta(minutes=10)
        await settle(services)
        assert telephony.dials[second_id] == 0
        clock.move_to(datetime.fromisoformat(second["heldUntil"]) + timedelta(seconds=1))
        second = await ended(api, secret, second_id)
        third_id = (await get(api, secret, root))["attempts"][2]
        third = await get(api, secret, third_id)
        assert third["attempt"] == 3 and third["attemptOf"] == root
        assert datetime.fromisoformat(third["heldUntil"]) - datetime.fromisoformat(second["endedAt"]) == timedelta(
            minutes=30)
        clock.move_to(datetime.fromisoformat(third["heldUntil"]) + timedelta(seconds=1))
        await ended(api, secret, third_id)
        await settle(services)
    assert len((await get(api, secret, root))["attempts"]) == 3  # the third was the last
    assert await call_count(services) == 3
    assert [telephony.dials[i] for i in (root, second_id, third_id)] == [1, 1, 1]
    assert [(await _terminal_payload(services, i))["attempt"] for i in (root, second_id, third_id)] == [1, 2, 3]
    assert (await _terminal_payload(services, third_id))["attemptOf"] == root


async def test_a_retry_that_would_fall_outside_calling_hours_waits_for_morning(world):
    services, clock, api = world
    clock.move_to(datetime(2026, 12, 2, 4, 50, tzinfo=UTC))  # 20:50 in San Francisco
    _, secret = await new_account(services)
    telephony = FakeTelephony({SF: DialResult.BUSY})
    root = (await place(api, secret, retry={"on": ["busy"], "maxAttempts": 2, "backoffMinutes": 30})).json()["callId"]
    async with running(worker(services, telephony)):
        first = await ended(api, secret, root)
    assert first["status"] == "no_answer" and first["endReason"] == "busy"
    retry = await get(api, secret, first["attempts"][1])
    assert retry["holdReason"] == "calling_hours" and retry["heldUntil"] == "2026-12-02T16:00:00.000Z"


async def test_outcomes_not_listed_and_cancels_are_not_retried(world):
    services, _, api = world
    _, secret = await new_account(services)
    telephony = FakeTelephony({SF: DialResult.DECLINED, LONDON: DialResult.NO_ANSWER})
    policy = {"on": ["no_answer"], "maxAttempts": 3, "backoffMinutes": 5}
    declined = (await place(api, secret, retry=policy)).json()["callId"]
    canceled = (await place(api, secret, to=LONDON, retry=policy, scheduledAt="2026-12-01T19:00:00Z")).json()["callId"]
    await api.post(f"/v1/agent/calls/{canceled}/cancel", headers=auth(secret))
    async with running(worker(services, telephony)):
        assert (await ended(api, secret, declined))["status"] == "declined"
    assert await call_count(services) == 2
    bad = await place(api, secret, retry={"on": ["completed"]})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
