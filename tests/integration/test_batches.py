"""Batches on a real store (SQLite and PostgreSQL) with real workers: row-by-row validation,
nothing created from a body that cannot be read, progress, cancel, the batch.finished event,
and 5,000 rows under a 10-call concurrent limit with a worker killed midway."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy import func, select

from byourside_server.agent.offline import OfflineBrain
from byourside_server.api.app import create_app
from byourside_server.clock import SystemClock
from byourside_server.domain import TERMINAL_STATUSES
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from byourside_server.store import schema as t
from byourside_server.telephony.base import DialOutcome, DialRequest, DialResult, Telephony
from byourside_server.telephony.simulator.provider import SimulatorTelephony
from byourside_server.telephony.simulator.scenarios import load_scenarios
from fakes import EchoBrain, FakeTelephony
from support import auth, new_account, open_services, running

UTC = timezone.utc
TUESDAY_10AM_SF = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


class ShiftedClock(SystemClock):
    """The system clock, moved to a chosen moment; time runs on from there."""

    def __init__(self, at: datetime) -> None:
        self._offset = at - datetime.now(UTC)

    def now(self) -> datetime:
        return super().now() + self._offset


@pytest.fixture
async def world(database_url, tmp_path):
    services = await open_services(database_url, tmp_path, clock=ShiftedClock(TUESDAY_10AM_SF), lease_seconds=2,
                                   heartbeat_seconds=0.3, poll_seconds=0.05)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=600) as api:
        yield services, api
    await services.aclose()


def worker(services, telephony, concurrency=4):
    deps = SessionDeps(calls=services.calls, telephony=telephony, brain=EchoBrain(), ring_timeout_seconds=5,
                       gate=services.compliance)
    return Worker(services, deps, concurrency=concurrency)


async def until(check, timeout=1800.0):
    """Poll ``check`` until it returns something truthy (a safety net for a slow machine, not a speed test)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.25)
    return value


async def batch_done(api, secret, batch_id):
    async def check():
        batch = (await api.get(f"/v1/agent/batches/{batch_id}", headers=auth(secret))).json()
        return batch if batch["finishedAt"] else None
    return await until(check)


async def counts(services):
    async with services.db.read() as conn:
        calls = (await conn.execute(select(func.count()).select_from(t.calls))).scalar_one()
        batches = (await conn.execute(select(func.count()).select_from(t.batches))).scalar_one()
    return calls, batches


GOOD = "+14155550123"


async def test_rows_are_checked_one_by_one_and_the_good_ones_run(world):
    services, api = world
    _, secret = await new_account(services)
    await api.post("/v1/agent/suppressions", json={"numbers": ["+14155550124"]}, headers=auth(secret))
    body = {
        "defaults": {"objective": "Confirm tomorrow's appointment.", "metadata": {"campaign": "december"},
                     "webhookUrl": "http://127.0.0.1:9/calls"},
        "calls": [
            {"to": GOOD, "context": "Ana, 10am", "metadata": {"row": "1"}},
            {"to": "415 555 0123"},  # not E.164
            {"to": "+14155550124"},  # on the do-not-call list
            {"to": "+19001234567"},  # premium rate
            {"to": "+14155550125", "objective": ""},  # blank objective, over the default
            {"to": "+14155550160", "scheduledAt": "next week"},
            {"to": "+14155550100", "fields": [{"name": "time"}]},
        ],
        "webhookUrl": "http://127.0.0.1:9/batches",
        "metadata": {"list": "tomorrow"},
    }
    response = await api.post("/v1/agent/batches", json=body, headers=auth(secret))
    assert response.status_code == 201, response.text
    batch = response.json()
    assert batch["total"] == 2 and batch["rejected"] == 5 and batch["status"] == "running"
    assert [(r["row"], r["error"]) for r in batch["rejectedRows"]] == [
        (2, "invalid_number"), (3, "destination_suppressed"), (4, "destination_blocked"), (5, "objective_required"),
        (6, "invalid_request")]
    assert batch["counts"]["queued"] == 2 and batch["metadata"] == {"list": "tomorrow"}
    async with running(worker(services, FakeTelephony())):
        done = await batch_done(api, secret, batch["batchId"])
    assert done["status"] == "finished" and done["counts"]["completed"] == 2
    calls = (await api.get("/v1/agent/calls", headers=auth(secret))).json()["calls"]
    first = next(c for c in calls if c["context"] == "Ana, 10am")
    assert first["batchId"] == batch["batchId"] and first["metadata"] == {"campaign": "december", "row": "1"}
    assert first["objective"] == "Confirm tomorrow's appointment."
    d = t.webhook_deliveries.c
    async with services.db.read() as conn:
        events = (await conn.execute(select(d.event, d.url, d.payload).where(d.event == "batch.finished"))).all()
    assert len(events) == 1 and events[0].url == "http://127.0.0.1:9/batches"
    payload = json.loads(events[0].payload)
    assert payload["batchId"] == batch["batchId"] and payload["counts"]["completed"] == 2 and payload["eventId"]


@pytest.mark.parametrize("content,content_type", [
    (b"{not json", "application/json"),
    (json.dumps({"calls": [{"to": GOOD}], "csv": "to\n+14155550123"}).encode(), "application/json"),
    (json.dumps({"calls": []}).encode(), "application/json"),
    (json.dumps({"calls": "to,objective"}).encode(), "application/json"),
    (json.dumps({"calls": [{"to": GOOD}], "extra": 1}).encode(), "application/json"),
    (json.dumps({"defaults": {"objective": "x"}, "csv": "to,phone_colour\n+14155550123,red"}).encode(), "application/json"),
    (b"objective\nCall them", "text/csv"),  # no 'to' column
    (b"to,objective\n\xff\xfe,x", "text/csv"),  # not UTF-8
    (b"", "text/csv"),
])
async def test_a_body_that_cannot_be_read_creates_nothing(world, content, content_type):
    services, api = world
    _, secret = await new_account(services)
    response = await api.post("/v1/agent/batches", content=content, headers={**auth(secret), "Content-Type": content_type})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request", response.text
    assert await counts(services) == (0, 0)


async def test_csv_batches_by_upload_and_inside_json(world):
    services, api = world
    _, secret = await new_account(services)
    upload = ("to,objective,context,metadata.patient\n"
              "+14155550123,Confirm the 10am appointment,Dr Lee,p-1\n"
              "+14155550100,Confirm the 11am appointment,,p-2\n"
              "+1415,Confirm,,p-3\n")
    response = await api.post("/v1/agent/batches", content=upload.encode(),
                              headers={**auth(secret), "Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    assert response.json()["total"] == 2 and response.json()["rejectedRows"][0]["row"] == 3
    inside = await api.post("/v1/agent/batches", json={
        "defaults": {"objective": "Remind them of the sale"}, "csv": "to,metadata.store\n+14155550125,north\n"},
        headers=auth(secret))
    assert inside.status_code == 201 and inside.json()["total"] == 1
    calls = (await api.get("/v1/agent/calls", headers=auth(secret))).json()["calls"]
    assert sorted(c["metadata"].get("patient", c["metadata"].get("store")) for c in calls) == ["north", "p-1", "p-2"]
    listed = (await api.get("/v1/agent/batches", headers=auth(secret))).json()["batches"]
    assert len(listed) == 2


async def test_canceling_a_batch_ends_its_waiting_calls(world):
    services, api = world
    _, secret = await new_account(services)
    body = {"defaults": {"objective": "Confirm", "scheduledAt": "2026-12-02T18:00:00Z"},
            "calls": [{"to": GOOD} for _ in range(5)]}
    batch = (await api.post("/v1/agent/batches", json=body, headers=auth(secret))).json()
    canceled = await api.post(f"/v1/agent/batches/{batch['batchId']}/cancel", headers=auth(secret))
    assert canceled.status_code == 200
    shown = canceled.json()
    assert shown["status"] == "canceled" and shown["counts"]["failed"] == 5 and shown["finishedAt"]
    again = await api.post(f"/v1/agent/batches/{batch['batchId']}/cancel", headers=auth(secret))
    assert again.status_code == 409
    _, other = await new_account(services)
    assert (await api.get(f"/v1/agent/batches/{batch['batchId']}", headers=auth(other))).status_code == 404


WANTS_PERSON = "+14155550134"  # the simulator's callee who asks for a real person
RECEPTIONIST = "+14155550100"  # answers


async def test_rows_carry_transfer_to_and_mode_checked_like_a_single_call(world):
    services, api = world
    _, secret = await new_account(services)
    body = {
        "defaults": {"objective": "Ask when the policy renewal is due.", "transferTo": RECEPTIONIST,
                     "transferMode": "warm"},
        "calls": [
            {"to": WANTS_PERSON, "metadata": {"row": "defaults"}},
            {"to": "+14155550125", "transferTo": ["+14155550161", RECEPTIONIST], "transferMode": "cold",
             "metadata": {"row": "own"}},
            {"to": "+14155550126", "transferTo": "+19001234567"},  # premium rate
            {"to": RECEPTIONIST},  # the transfer number is the number being called
            {"to": "+14155550127", "transferTo": "415 555 0100"},  # not E.164
            {"to": "+14155550128", "transferMode": "lukewarm"},
        ],
    }
    response = await api.post("/v1/agent/batches", json=body, headers=auth(secret))
    assert response.status_code == 201, response.text
    batch = response.json()
    assert [(r["row"], r["error"]) for r in batch["rejectedRows"]] == [
        (3, "invalid_transfer_to"), (4, "invalid_transfer_to"), (5, "invalid_transfer_to"), (6, "invalid_request")]
    assert "0100" not in json.dumps(batch["rejectedRows"])  # refusals name no number
    csv_batch = await api.post("/v1/agent/batches", content=(
        b"to,objective,transferTo,transferMode\n"
        b"+14155550129,Confirm the booking,+14155550100;+14155550161,warm\n"
        b"+14155550130,Confirm the booking,,\n"), headers={**auth(secret), "Content-Type": "text/csv"})
    assert csv_batch.status_code == 201 and csv_batch.json()["rejectedRows"] == [], csv_batch.text
    calls = (await api.get("/v1/agent/calls", headers=auth(secret))).json()["calls"]
    shown = {c["to"]: (c["transferTo"], c["transferMode"]) for c in calls}
    assert shown == {
        WANTS_PERSON: ([RECEPTIONIST], "warm"),
        "+14155550125": (["+14155550161", RECEPTIONIST], "cold"),
        "+14155550129": ([RECEPTIONIST, "+14155550161"], "warm"),
        "+14155550130": (None, None),
    }
    await api.post(f"/v1/agent/batches/{csv_batch.json()['batchId']}/cancel", headers=auth(secret))
    telephony = SimulatorTelephony(load_scenarios(), SystemClock(), time_scale=0)
    deps = SessionDeps(calls=services.calls, telephony=telephony, brain=OfflineBrain(), ring_timeout_seconds=30,
                       gate=services.compliance)
    async with running(Worker(services, deps, concurrency=2)):
        await batch_done(api, secret, batch["batchId"])
    calls = (await api.get("/v1/agent/calls", headers=auth(secret))).json()["calls"]
    handed = next(c for c in calls if c["to"] == WANTS_PERSON)
    assert (handed["status"], handed["endReason"]) == ("completed", "transferred"), handed
    (transfer,) = telephony.transfers  # the callee who asked for a person was handed to the batch's default
    assert transfer.to == RECEPTIONIST and transfer.brief  # warm: the person was briefed


class CountingTelephony(Telephony):
    """Rings briefly, then no answer; counts dials per call and the most dials in progress at once."""

    name = "counting"

    def __init__(self) -> None:
        self.dials: Counter[str] = Counter()
        self.in_progress = 0
        self.most = 0

    async def dial(self, request: DialRequest) -> DialOutcome:
        self.dials[request.call_id] += 1
        self.in_progress += 1
        self.most = max(self.most, self.in_progress)
        try:
            await asyncio.sleep(0.01)
        finally:
            self.in_progress -= 1
        return DialOutcome(DialResult.NO_ANSWER, reason="scripted")


def kill(loop_task: asyncio.Task, doomed: Worker) -> None:
    """Stop a worker dead: its calls in hand are abandoned mid-step, nothing more is written for them."""
    for _, task in list(doomed.sessions.values()):
        task.cancel()
    loop_task.cancel()


# PostgreSQL is the scale-out store and gets the full 5,000 rows; SQLite, the one-process store, the same
# test at 1,000 (the same code path, a fifth of the time).
ROWS_BY_STORE = {"postgresql": 5000, "sqlite": 1000}


async def test_thousands_of_rows_under_ten_at_once_with_a_worker_killed_midway(world, database_url):
    services, api = world
    total = ROWS_BY_STORE[database_url.split("+")[0]]
    account, secret = await new_account(services)
    await services.accounts.set_limits(account.id, max_concurrent_calls=10, monthly_minutes=10_000_000)
    rows = [{"to": f"+1415555{100 + i % 64:04d}", "metadata": {"row": str(i)}} for i in range(total)]
    response = await api.post("/v1/agent/batches", json={"defaults": {"objective": "Confirm the delivery slot."},
                                                         "calls": rows, "webhookUrl": "http://127.0.0.1:9/done"},
                              headers=auth(secret))
    assert response.status_code == 201 and response.json()["total"] == total, response.text[:500]
    batch_id = response.json()["batchId"]
    telephony = CountingTelephony()
    doomed = worker(services, telephony, concurrency=8)
    doomed_task = asyncio.create_task(doomed.run())
    async with running(worker(services, telephony, concurrency=8)):
        async def halfway():
            batch = (await api.get(f"/v1/agent/batches/{batch_id}", headers=auth(secret))).json()
            return batch["counts"]["no_answer"] >= total * 2 // 5
        await until(halfway)
        in_hand = set(doomed.sessions)
        kill(doomed_task, doomed)
        await asyncio.gather(doomed_task, return_exceptions=True)
        done = await batch_done(api, secret, batch_id)
    assert in_hand, "the killed worker held calls when it died"
    c, e = t.calls.c, t.call_events.c
    async with services.db.read() as conn:
        statuses = Counter((await conn.execute(select(c.status).where(c.batch_id == batch_id))).scalars())
        ends = Counter((await conn.execute(select(e.call_id).join(t.calls, c.id == e.call_id).where(
            c.batch_id == batch_id, e.status.in_([s.value for s in TERMINAL_STATUSES])))).scalars())
        finished_events = (await conn.execute(select(func.count()).select_from(t.webhook_deliveries).where(
            t.webhook_deliveries.c.event == "batch.finished"))).scalar_one()
    assert sum(statuses.values()) == total and set(statuses) <= {"no_answer", "failed"}
    assert len(ends) == total and set(ends.values()) == {1}  # every row ended exactly once
    assert max(telephony.dials.values()) == 1  # none dialled twice
    assert telephony.most <= 10
    assert done["status"] == "finished" and sum(done["counts"].values()) == total and finished_events == 1
