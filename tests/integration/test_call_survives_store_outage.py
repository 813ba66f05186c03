"""Kill the database during a live call: the finished conversation is kept, and the call is dialled once.

A real call through the runtime (worker, phone simulator, offline agent) on
PostgreSQL, with the database behind a TCP proxy that the test cuts (refusing
new connections and dropping open ones) or freezes (a hung server: nothing
forwarded) at a chosen point of the call. A second worker that shares the
outage stands by: once the database is back every lease looks expired, and its
reaper must not take the call from the worker that still holds it.

The conversation itself runs in compressed time (simulator time scale 0); the
outages are real time, longer than the lease, since that is what is tested.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from byourside_server.agent.offline import OfflineBrain
from byourside_server.api.requests import validate_call_request
from byourside_server.clock import SystemClock
from byourside_server.cli.demo import DEMO_FIELDS, DEMO_OBJECTIVE
from byourside_server.domain import TERMINAL_STATUSES
from byourside_server.placement import place_call
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from byourside_server.telephony.base import DialOutcome, DialRequest, Telephony
from byourside_server.telephony.simulator.provider import SimulatorTelephony
from byourside_server.telephony.simulator.scenarios import load_scenarios
from db_proxy import DatabaseProxy
from support import new_account, open_services, running

LEASE_SECONDS = 5
# Generous for a busy machine, and far below the 30 s a frozen statement used to take.
DB_TIMEOUTS = {"db_connect_timeout_seconds": 2, "db_statement_timeout_seconds": 2}
EXPECTED_FIELDS = {"table_available": True, "tasting_menu_price": 85}


class Checkpoint:
    """A point in the call where the call waits until the test lets it go on."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.go_on = asyncio.Event()

    async def pass_through(self) -> None:
        self.reached.set()
        await self.go_on.wait()


class HeldLine:
    """Delegates to a simulated line; its ``hold_at``-th ``listen`` waits at the checkpoint first."""

    def __init__(self, inner, hold_at: int | None, checkpoint: Checkpoint) -> None:  # noqa: ANN001
        self._inner = inner
        self._hold_at = hold_at
        self._checkpoint = checkpoint
        self._listens = 0

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._inner, name)

    async def listen(self, timeout_seconds: float):  # noqa: ANN201
        self._listens += 1
        if self._listens == self._hold_at:
            await self._checkpoint.pass_through()
        return await self._inner.listen(timeout_seconds)


class HeldTelephony(Telephony):
    """The phone simulator, counting dials, holding the call at a checkpoint: right after the answer
    (before the call is marked live) or at a given ``listen`` of the conversation."""

    def __init__(self, *, after_answer: bool = False, at_listen: int | None = None) -> None:
        self.inner = SimulatorTelephony(load_scenarios(), SystemClock(), time_scale=0)
        self.after_answer = after_answer
        self.at_listen = at_listen
        self.checkpoint = Checkpoint()
        self.dials: list[str] = []
        self.lines: list[HeldLine] = []

    async def dial(self, request: DialRequest) -> DialOutcome:
        self.dials.append(request.call_id)
        outcome = await self.inner.dial(request)
        if self.after_answer:
            await self.checkpoint.pass_through()
        if outcome.line is None:
            return outcome
        self.lines.append(HeldLine(outcome.line, self.at_listen, self.checkpoint))
        return dataclasses.replace(outcome, line=self.lines[-1])


async def wait_until(condition, what: str, timeout: float = 120.0) -> None:  # noqa: ANN001
    """Poll ``condition`` (an async callable); ``timeout`` is a safety net, not a speed requirement."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def conduct_through_outage(postgres_url: str, tmp_path: Path, telephony: HeldTelephony, outage) -> tuple:  # noqa: ANN001
    """Place the demo call; when it reaches the telephony's checkpoint, play ``outage(proxy)`` (which
    lets the call go on and restores the database); return the ended call and its events."""
    proxy, proxied_url = await DatabaseProxy.in_front_of(postgres_url)
    observer = await open_services(postgres_url, tmp_path / "observer")  # reads past the proxy
    holder = await open_services(proxied_url, tmp_path / "holder", lease_seconds=LEASE_SECONDS,
                                 heartbeat_seconds=0.5, poll_seconds=0.05, **DB_TIMEOUTS)
    # Reaps as eagerly as possible, so it would win any race with the holder's heartbeat.
    bystander = await open_services(proxied_url, tmp_path / "bystander", lease_seconds=LEASE_SECONDS,
                                    heartbeat_seconds=0.05, poll_seconds=0.05, **DB_TIMEOUTS)
    try:
        account, _ = await new_account(observer)
        keys = await observer.accounts.list_keys(account.id)
        body = {"to": "+14155550123", "objective": DEMO_OBJECTIVE, "fields": DEMO_FIELDS}
        call_id = (await place_call(observer, account, keys[0], validate_call_request(body))).call.id

        def worker(services):  # noqa: ANN001, ANN202
            deps = SessionDeps(calls=services.calls, telephony=telephony, brain=OfflineBrain(), ring_timeout_seconds=15)
            return Worker(services, deps, concurrency=1)

        async with running(worker(holder)):
            await asyncio.wait_for(telephony.checkpoint.reached.wait(), timeout=120)
            async with running(worker(bystander)):
                await outage(proxy, telephony.checkpoint, observer, account.id, call_id)

                async def ended() -> bool:
                    return (await observer.calls.get(account.id, call_id)).status in TERMINAL_STATUSES

                await wait_until(ended, "the call to end")
        return await observer.calls.get(account.id, call_id), await observer.calls.events(call_id)
    finally:
        for services in (holder, bystander, observer):
            await services.aclose()
        await proxy.close()


def assert_completed_once(call, events, telephony: HeldTelephony) -> None:  # noqa: ANN001
    assert (call.status.value, call.end_reason) == ("completed", "objective_met"), (call.status, call.end_reason)
    assert call.extracted == EXPECTED_FIELDS
    assert call.summary and call.summary.startswith("A person answered."), call.summary
    assert call.objective_met is True
    assert any(t.speaker == "contact" for t in call.turns) and call.started_at is not None
    assert telephony.dials == [call.id]
    assert [e[0] for e in events] == ["call.dialing", "call.in_progress", "call.completed"]


async def test_thirty_second_outage_mid_conversation_keeps_the_finished_call(postgres_url: str, tmp_path: Path):
    """Cut at the conversation's second listen (live and transcribing): the rest of the conversation,
    the analysis and the finish all happen with the database gone for 30 s."""
    telephony = HeldTelephony(at_listen=2)

    async def outage(proxy, checkpoint, observer, account_id, call_id):  # noqa: ANN001
        async def live_with_turns() -> bool:
            call = await observer.calls.get(account_id, call_id)
            return call.status.value == "in_progress" and bool(call.turns)

        await wait_until(live_with_turns, "the live transcript")
        await proxy.cut()
        checkpoint.go_on.set()
        await asyncio.sleep(30)
        # Nobody could reach the database, so nobody could take the call: it is still live.
        assert (await observer.calls.get(account_id, call_id)).status.value == "in_progress"
        await proxy.restore()

    call, events = await conduct_through_outage(postgres_url, tmp_path, telephony, outage)
    assert_completed_once(call, events, telephony)


async def test_frozen_database_from_answer_to_finish_keeps_the_finished_call(postgres_url: str, tmp_path: Path):
    """Freeze (no byte forwarded) right after the callee answers, before the call is marked live,
    for more than two leases, then restart the hung database (its connections dropped, a moment
    down): the conversation does not wait for the database, and every write lands afterwards."""
    telephony = HeldTelephony(after_answer=True)

    async def outage(proxy, checkpoint, observer, account_id, call_id):  # noqa: ANN001
        proxy.freeze()
        checkpoint.go_on.set()
        await asyncio.sleep(LEASE_SECONDS * 2.5)
        assert (await observer.calls.get(account_id, call_id)).status.value == "dialing"
        assert telephony.lines[0].closed  # the whole conversation took place meanwhile
        await proxy.cut()
        await asyncio.sleep(2)
        await proxy.restore()

    call, events = await conduct_through_outage(postgres_url, tmp_path, telephony, outage)
    assert_completed_once(call, events, telephony)
