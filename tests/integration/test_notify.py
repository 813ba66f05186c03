"""On PostgreSQL, workers in another process wake on LISTEN/NOTIFY, not only by polling.

Polling and heartbeats are set to an hour here, so the call can only be claimed
(and its cancel noticed) through notifications from a separate Services
instance standing in for an API process.
"""

from __future__ import annotations

import asyncio

from byourside_server.api.requests import validate_call_request
from byourside_server.placement import place_call
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from fakes import EchoBrain, FakeTelephony
from support import new_account, open_services


async def _wait(predicate, timeout=90.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_worker_in_another_process_wakes_on_notify(postgres_url, tmp_path):
    api_side = await open_services(postgres_url, tmp_path / "api")
    worker_side = await open_services(postgres_url, tmp_path / "worker", poll_seconds=3600, heartbeat_seconds=3600)
    telephony = FakeTelephony(replies=["Hello?"] * 10_000)
    deps = SessionDeps(worker_side.calls, telephony, EchoBrain(endless=True, pause_seconds=0.01), 5)
    worker = Worker(worker_side, deps, concurrency=2)
    task = asyncio.create_task(worker.run())
    try:
        account, _ = await new_account(api_side)
        key = (await api_side.accounts.list_keys(account.id))[0]
        request = validate_call_request({"to": "+14155550123", "objective": "Ask for the opening hours."})
        await asyncio.sleep(0.5)  # the worker's first claim attempt is over; only a notification can wake it now
        call_id = (await place_call(api_side, account, key, request)).call.id

        async def live():
            return (await api_side.calls.get(account.id, call_id)).status.value == "in_progress"

        await _wait(live)
        await api_side.calls.request_cancel(account.id, call_id)

        async def ended():
            return (await api_side.calls.get(account.id, call_id)).status.value == "completed"

        await _wait(ended)
        assert (await api_side.calls.get(account.id, call_id)).end_reason == "canceled"
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)
        await api_side.aclose()
        await worker_side.aclose()
