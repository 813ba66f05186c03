"""A worker killed with SIGKILL mid-call: no call is dialled twice and none is stuck forever."""

from __future__ import annotations

import signal
import subprocess
import time

import byourside
import pytest

from e2e_server import BIN, start_server

TERMINAL = {"completed", "no_answer", "voicemail", "declined", "failed"}


def start_worker(server, log_name: str, **env: str) -> subprocess.Popen:
    log = open(server.log_path.parent / log_name, "w")
    return subprocess.Popen(
        [str(BIN / "byourside"), "worker"], env={**server.env, **env}, stdout=log, stderr=subprocess.STDOUT
    )


def wait_status(client, call_id, statuses, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        call = client.get_call(call_id)
        if call["status"] in statuses:
            return call
        time.sleep(0.1)
    raise AssertionError(f"call {call_id} still {call['status']}")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigkilled_worker_loses_no_call_and_dials_none_twice(backend, request, tmp_path):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    if url:
        from e2e_server import _reset_postgres

        _reset_postgres(url)
    # API only; calls run in separate worker processes, one call at a time, slowly enough to be killed mid-call.
    server = start_server(
        tmp_path, url, "--no-workers",
        BYS_WORKERS="1", BYS_SIM_TIME_SCALE="0.5", BYS_LEASE_SECONDS="2", BYS_HEARTBEAT_SECONDS="0.3",
    )
    first_worker = second_worker = None
    try:
        client = byourside.Client(server.new_key(), base_url=server.base_url)
        live = client.place_call("+14155550123", "Ask about a table for two tonight.")["callId"]
        waiting = client.place_call("+14155550123", "Ask about a table for two tomorrow.")["callId"]

        first_worker = start_worker(server, "worker1.log")
        wait_status(client, live, {"in_progress"})
        assert client.get_call(waiting)["status"] == "queued"  # concurrency 1: not claimed yet
        first_worker.send_signal(signal.SIGKILL)
        first_worker.wait(timeout=10)

        second_worker = start_worker(server, "worker2.log", BYS_SIM_TIME_SCALE="0")
        lost = wait_status(client, live, TERMINAL)
        assert lost["status"] == "failed" and lost["endReason"] == "worker_lost"
        done = wait_status(client, waiting, TERMINAL, timeout=120)
        assert done["status"] == "completed"

        # The store's event log shows each call dialled exactly once.
        for call_id in (live, waiting):
            events = _dialing_events(server, call_id)
            assert events == 1, (call_id, events)
    finally:
        for worker in (first_worker, second_worker):
            if worker and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
        server.stop()


def _dialing_events(server, call_id: str) -> int:
    import asyncio

    from sqlalchemy import func, select

    from byourside_server.settings import Settings
    from byourside_server.store import schema
    from byourside_server.store.database import open_database

    settings = Settings(data_dir=server.env["BYS_DATA_DIR"], database_url=server.env.get("BYS_DATABASE_URL"))

    async def count() -> int:
        db = open_database(settings.effective_database_url)
        try:
            async with db.read() as conn:
                query = select(func.count()).where(
                    schema.call_events.c.call_id == call_id, schema.call_events.c.event == "call.dialing"
                )
                return (await conn.execute(query)).scalar_one()
        finally:
            await db.dispose()

    return asyncio.run(count())
