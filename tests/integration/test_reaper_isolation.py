"""The reaper fails each orphaned call in its own transaction: one row that cannot be
moved never keeps the others (of any account) from being reaped. On both stores."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update
from structlog.testing import capture_logs

from byourside_server.store import schema as t
from fakes import EchoBrain, FakeTelephony
from support import new_account, open_services, running
from test_runtime import make_worker, queue_call

VANISHED = "worker-that-died"


@pytest.fixture
async def fast_services(database_url, tmp_path):
    # A worker reaps once it has reached the store for a whole lease period: keep that short.
    svc = await open_services(database_url, tmp_path, lease_seconds=1, heartbeat_seconds=0.1, poll_seconds=0.05)
    yield svc
    await svc.aclose()


async def _orphan(services, account, **extra) -> str:  # noqa: ANN001
    """A call dialled by a worker that then vanished: status dialing, lease expired."""
    call_id = await queue_call(services, account, **extra)
    claimed = await services.calls.claim_next(VANISHED, 30)
    assert claimed is not None and claimed.id == call_id
    assert await services.calls.mark_dialing(call_id, VANISHED)
    async with services.db.write() as conn:
        await conn.execute(update(t.calls).where(t.calls.c.id == call_id)
                           .values(lease_expires_at=services.clock.now() - timedelta(minutes=5)))
    return call_id


async def _status(services, call_id: str) -> tuple[str, str | None]:  # noqa: ANN001
    async with services.db.read() as conn:
        row = (await conn.execute(select(t.calls.c.status, t.calls.c.end_reason).where(t.calls.c.id == call_id))).one()
    return row.status, row.end_reason


async def test_a_row_poisoned_before_validation_is_reaped_with_the_rest(fast_services):
    """Text the API now refuses, already stored (a lone surrogate in metadata) on a call with a
    webhook: its event is built anyway, so it and every other orphan are reaped."""
    services = fast_services
    alice, _ = await new_account(services)
    bob, _ = await new_account(services)
    poisoned = await _orphan(services, alice, webhookUrl="http://127.0.0.1:9/hook")
    normal = await _orphan(services, bob)
    metadata = '{"note": "\\ud800"}'
    cast = "" if services.db.is_sqlite else "::json"
    async with services.db.write() as conn:
        await conn.execute(text(f"UPDATE calls SET metadata = CAST(:m AS TEXT){cast} WHERE id = :id"),
                           {"m": metadata, "id": poisoned})

    assert sorted(await services.calls.reap_expired()) == sorted([poisoned, normal])
    assert await _status(services, poisoned) == ("failed", "worker_lost")
    assert await _status(services, normal) == ("failed", "worker_lost")
    async with services.db.read() as conn:
        payload = (await conn.execute(select(t.webhook_deliveries.c.payload))).scalar_one()
    event = json.loads(payload.encode("utf-8"))
    assert event["event"] == "call.failed" and event["metadata"] == {"note": "\ufffd"}


# A row no status change can be written for: the store itself refuses to fail this call.
_PG_REFUSE = ("ALTER TABLE calls ADD CONSTRAINT bys_test_refuse_reap "
              "CHECK (status <> 'failed' OR id <> '{id}') NOT VALID")
_PG_CURE = "ALTER TABLE calls DROP CONSTRAINT IF EXISTS bys_test_refuse_reap"
_SQLITE_REFUSE = ("CREATE TRIGGER bys_test_refuse_reap BEFORE UPDATE ON calls "
                  "WHEN NEW.status = 'failed' AND OLD.id = '{id}' BEGIN SELECT RAISE(ABORT, 'refused'); END")


async def test_a_row_that_cannot_be_moved_does_not_stop_the_reaper(fast_services):
    services = fast_services
    alice, _ = await new_account(services)
    bob, _ = await new_account(services)
    stuck = await _orphan(services, alice, webhookUrl="http://127.0.0.1:9/hook")
    normal = await _orphan(services, bob)
    refuse = _SQLITE_REFUSE if services.db.is_sqlite else _PG_REFUSE
    async with services.db.write() as conn:
        await conn.execute(text(refuse.format(id=stuck)))
    try:
        with capture_logs() as logs:
            # The worker's upkeep loop reaps at every heartbeat.
            async with running(make_worker(services, FakeTelephony(), EchoBrain())):
                deadline = asyncio.get_running_loop().time() + 60  # a safety net, not a speed requirement
                while (await _status(services, normal))[0] != "failed" and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.3)  # a few more rounds: the stuck call is retried
        assert await _status(services, normal) == ("failed", "worker_lost")
        assert (await _status(services, stuck))[0] == "dialing"
    finally:
        if not services.db.is_sqlite:
            async with services.db.write() as conn:
                await conn.execute(text(_PG_CURE))

    failures = [entry for entry in logs if entry["event"] == "call_reap_failed"]
    assert len(failures) == 1 and failures[0]["call_id"] == stuck  # retried each round, logged once
    # By id only: no number, objective or other row content among the fields.
    assert all(set(entry) <= {"event", "call_id", "log_level", "exc_info"} for entry in failures)
    assert not any(entry["event"] == "upkeep_error" for entry in logs)
