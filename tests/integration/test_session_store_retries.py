"""A call's status writes retried across store outages, on both stores.

The outage is played at the repository boundary: the real write runs against the
real store, and its answer is then lost (``StoreUnavailable`` after the commit),
or the write fails before reaching the store. Either way the call is dialled
exactly once and its outcome is stored once.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from byourside_server.api.requests import validate_call_request
from byourside_server.clock import FakeClock
from byourside_server.errors import StoreUnavailable
from byourside_server.placement import place_call
from byourside_server.runtime.session import SessionDeps, StoreRetry
from byourside_server.runtime.worker import Worker
from byourside_server.store.calls import CallRepo
from fakes import EchoBrain, FakeTelephony
from support import new_account, open_services, running


class FlakyCalls(CallRepo):
    """The real repository, except that chosen writes fail: ``before`` (nothing written) or
    ``after`` (written and committed, but the answer never arrives); while ``down``, every
    write and heartbeat fails (this worker is cut off from the store)."""

    def __init__(self, inner: CallRepo, failures: dict[str, list[str]] | None = None) -> None:
        super().__init__(inner.db, inner.clock)
        self.failures = {name: list(plan) for name, plan in (failures or {}).items()}
        self.attempts: dict[str, int] = {}
        self.down = False

    async def _flaky(self, name: str, write):  # noqa: ANN001, ANN202
        self.attempts[name] = self.attempts.get(name, 0) + 1
        plan = self.failures.get(name) or ["ok"]
        step = plan.pop(0)
        if step == "before" or self.down:
            raise StoreUnavailable()
        result = await write()
        if step == "after":
            raise StoreUnavailable()
        return result

    async def mark_dialing(self, call_id, worker_id):  # noqa: ANN001, ANN201
        return await self._flaky("mark_dialing", lambda: super(FlakyCalls, self).mark_dialing(call_id, worker_id))

    async def mark_in_progress(self, call_id, worker_id):  # noqa: ANN001, ANN201
        return await self._flaky("mark_in_progress",
                                 lambda: super(FlakyCalls, self).mark_in_progress(call_id, worker_id))

    async def save_live_turns(self, call_id, worker_id, turns):  # noqa: ANN001, ANN201
        return await self._flaky("save_live_turns",
                                 lambda: super(FlakyCalls, self).save_live_turns(call_id, worker_id, turns))

    async def finish(self, call_id, worker_id, outcome):  # noqa: ANN001, ANN201
        return await self._flaky("finish", lambda: super(FlakyCalls, self).finish(call_id, worker_id, outcome))

    async def heartbeat(self, worker_id, call_ids, lease_seconds):  # noqa: ANN001, ANN201
        if self.down:
            raise StoreUnavailable()
        return await super().heartbeat(worker_id, call_ids, lease_seconds)


@pytest.fixture
async def fast_services(database_url, tmp_path):
    svc = await open_services(database_url, tmp_path, lease_seconds=5, heartbeat_seconds=0.1, poll_seconds=0.05)
    yield svc
    await svc.aclose()


async def queue_call(services, account, **extra):  # noqa: ANN001, ANN201
    keys = await services.accounts.list_keys(account.id)
    request = validate_call_request({"to": "+14155550123", "objective": "Ask for the opening hours.", **extra})
    return (await place_call(services, account, keys[0], request)).call.id


def flaky_worker(services, telephony, calls: CallRepo) -> Worker:  # noqa: ANN001
    """A worker whose sessions write through ``calls`` (its heartbeat too, when ``calls`` is flaky)."""
    deps = SessionDeps(calls=calls, telephony=telephony, brain=EchoBrain(), ring_timeout_seconds=5)
    worker = Worker(services, deps, concurrency=1)
    worker.services = dataclasses.replace(services, calls=calls)
    return worker


async def wait_for(condition, what: str, timeout: float = 60.0) -> None:  # noqa: ANN001
    """``timeout`` is a safety net for a slow machine, not a speed requirement."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("lost", ["before", "after"])
async def test_every_write_survives_failed_attempts_and_the_call_is_dialled_once(fast_services, lost):
    services = fast_services
    account, _ = await new_account(services)
    call_id = await queue_call(services, account, fields=[{"name": "opens_at"}])
    failures = {name: [lost, "before"] for name in ("mark_dialing", "mark_in_progress", "save_live_turns", "finish")}
    calls = FlakyCalls(services.calls, failures)
    telephony = FakeTelephony()

    async def ended() -> bool:
        return (await services.calls.get(account.id, call_id)).status.terminal

    async with running(flaky_worker(services, telephony, calls)):
        await wait_for(ended, "the call to end")
    call = await services.calls.get(account.id, call_id)
    assert (call.status.value, call.end_reason) == ("completed", "objective_met")
    assert call.extracted == {"opens_at": None} and call.turns
    assert telephony.dials[call_id] == 1
    assert [e[0] for e in await services.calls.events(call_id)] == ["call.dialing", "call.in_progress", "call.completed"]
    assert calls.attempts["mark_dialing"] == 3
    # A finish whose answer was lost may not be retried at all: the next heartbeat sees the call
    # ended and stops the session.
    assert calls.attempts["finish"] == 3 if lost == "before" else calls.attempts["finish"] >= 1


async def test_retry_backs_off_with_a_cap_and_gives_up_after_its_bound():
    clock = FakeClock()
    retry = StoreRetry(clock=clock, give_up_after_seconds=60, first_delay_seconds=0.5, max_delay_seconds=4, jitter=0.25)
    started, attempts = [], 0

    async def down() -> None:
        nonlocal attempts
        attempts += 1
        started.append(clock.monotonic())
        raise StoreUnavailable()

    with pytest.raises(StoreUnavailable):
        await retry.run(down, what="finish", call_id="c")
    delays = [b - a for a, b in zip(started, started[1:])]
    assert delays[0] <= 0.5 and all(0 < d <= 4 for d in delays)
    assert max(delays) > 2  # it did back off
    assert started[-1] >= 60 - 1e-9 and attempts < 40  # tried until the bound, not in a tight loop

    results = iter([StoreUnavailable(), StoreUnavailable(), "stored"])

    async def recovers() -> str:
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    assert await retry.run(recovers, what="finish", call_id="c") == "stored"


async def test_a_call_reaped_while_its_worker_was_cut_off_is_left_to_the_reaper(database_url, tmp_path):
    """Only this worker lost the store: another worker's reaper failed the call once the lease
    expired. When the store is back, the holder's heartbeat finds the lease gone and stops the
    session; its finished outcome is not written over the reaper's, and nothing is redialled."""
    services = await open_services(database_url, tmp_path, lease_seconds=1, heartbeat_seconds=0.1, poll_seconds=0.05)
    try:
        account, _ = await new_account(services)
        call_id = await queue_call(services, account)
        calls = FlakyCalls(services.calls)
        telephony = FakeTelephony(replies=["Hello?"] * 10_000)
        worker = flaky_worker(services, telephony, calls)
        worker.deps.brain = EchoBrain(endless=True, pause_seconds=0.01)

        async def status_is(status: str) -> bool:
            return (await services.calls.get(account.id, call_id)).status.value == status

        async with running(worker):
            await wait_for(lambda: status_is("in_progress"), "the call to go live")
            calls.down = True
            await services.calls.request_cancel(account.id, call_id)  # ends the conversation, once heard
            worker.sessions[call_id][0].cancel_requested.set()
            await wait_for(lambda: _true(calls.attempts.get("finish", 0) >= 2), "finish retries")

            async def reaped() -> bool:
                return call_id in await services.calls.reap_expired()  # another worker's reaper

            await wait_for(reaped, "the lease to expire and be reaped")
            calls.down = False
            await wait_for(lambda: _true(not worker.sessions), "the session to stop")
        call = await services.calls.get(account.id, call_id)
        assert (call.status.value, call.end_reason) == ("failed", "worker_lost")
        assert telephony.dials[call_id] == 1
    finally:
        await services.aclose()


async def _true(value: bool) -> bool:
    return value
