"""Batches of calls (``batches`` table; each call carries ``batch_id``).

A batch and all its calls are inserted in one transaction, so a batch exists whole or not
at all. Its calls are queued with ``not_before`` set, so the worker's claim paces them by the
account's concurrent-call limit (store/compliance.py ``claimable``). When the last of them
ends (``finished_in``, in that call's own transaction) the batch is finished.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from byourside_server.clock import Clock
from byourside_server.domain import ACTIVE_STATUSES, CallStatus
from byourside_server.errors import NotFound
from byourside_server.guardrails.text import possible_id
from byourside_server.store import schema as t
from byourside_server.store.call_types import NewCall
from byourside_server.store.database import Database
from byourside_server.store.notify import CALL_QUEUED, notify

RUNNING, FINISHED, CANCELED = "running", "finished", "canceled"
_ACTIVE = [s.value for s in ACTIVE_STATUSES]
_CHUNK = 500


@dataclass(frozen=True)
class BatchRecord:
    id: str
    account_id: str
    status: str
    total: int
    rejected: int
    webhook_url: str | None
    metadata: Mapping[str, str]
    created_at: datetime
    canceled_at: datetime | None
    finished_at: datetime | None
    counts: Mapping[str, int]  # calls by status (retry attempts included)


def _record(row: Mapping[str, Any], counts: Mapping[str, int]) -> BatchRecord:
    return BatchRecord(row["id"], row["account_id"], row["status"], row["total"], row["rejected"], row["webhook_url"],
                       row["metadata"] or {}, row["created_at"], row["canceled_at"], row["finished_at"], dict(counts))


async def _counts(conn: AsyncConnection, batch_id: str) -> dict[str, int]:
    c = t.calls.c
    rows = await conn.execute(select(c.status, func.count()).where(c.batch_id == batch_id).group_by(c.status))
    return {status: count for status, count in rows}


async def finished_in(conn: AsyncConnection, batch_id: str, now: datetime) -> BatchRecord | None:
    """On the transaction that ended one of the batch's calls: finish the batch if that was its
    last active call; the batch as finished, or None (still running, or finished already)."""
    c = t.calls.c
    active = (await conn.execute(select(c.id).where(and_(c.batch_id == batch_id, c.status.in_(_ACTIVE))).limit(1))).first()
    if active is not None:
        return None
    b = t.batches.c
    row = (await conn.execute(
        update(t.batches).where(and_(b.id == batch_id, b.finished_at.is_(None)))
        .values(finished_at=now, status=func.coalesce(func.nullif(b.status, RUNNING), FINISHED))
        .returning(*t.batches.c))).mappings().first()
    return _record(row, await _counts(conn, batch_id)) if row is not None else None


class BatchRepo:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def create(self, account_id: str, calls: Sequence[tuple[NewCall, datetime]], *, rejected: int,
                     webhook_url: str | None, metadata: Mapping[str, str]) -> BatchRecord:
        """Insert the batch and its calls (each with the moment it may be dialled) in one transaction."""
        now = self.clock.now()
        batch = {"id": str(uuid.uuid4()), "account_id": account_id, "status": RUNNING if calls else FINISHED,
                 "total": len(calls), "rejected": rejected, "webhook_url": webhook_url, "metadata": dict(metadata),
                 "created_at": now, "canceled_at": None, "finished_at": None if calls else now}
        async with self.db.write() as conn:
            await conn.execute(insert(t.batches).values(**batch))
            for start in range(0, len(calls), _CHUNK):
                await conn.execute(insert(t.calls), [_call_row(account_id, batch["id"], new, due, now)
                                                     for new, due in calls[start:start + _CHUNK]])
            await notify(conn, CALL_QUEUED)
        return _record(batch, {CallStatus.QUEUED.value: len(calls)} if calls else {})

    async def get(self, account_id: str, batch_id: str) -> BatchRecord:
        if not possible_id(batch_id):
            raise NotFound("No such batch on this account.")
        b = t.batches.c
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.batches).where(and_(b.id == batch_id, b.account_id == account_id)))
                   ).mappings().first()
            if row is None:
                raise NotFound("No such batch on this account.")
            return _record(row, await _counts(conn, batch_id))

    async def list(self, account_id: str, *, limit: int) -> list[BatchRecord]:
        """The newest batches, with their counts."""
        b = t.batches.c
        async with self.db.read() as conn:
            rows = (await conn.execute(select(t.batches).where(b.account_id == account_id)
                                       .order_by(b.created_at.desc(), b.id.desc()).limit(limit))).mappings().all()
            return [_record(r, await _counts(conn, r["id"])) for r in rows]

    async def mark_canceled(self, account_id: str, batch_id: str) -> list[str]:
        """Flag the batch canceled; the ids of its calls still queued (the caller cancels each)."""
        b, c = t.batches.c, t.calls.c
        await self.get(account_id, batch_id)
        async with self.db.write() as conn:
            await conn.execute(update(t.batches).where(and_(b.id == batch_id, b.canceled_at.is_(None),
                                                            b.finished_at.is_(None)))
                               .values(canceled_at=self.clock.now(), status=CANCELED))
            return list((await conn.execute(select(c.id).where(and_(
                c.batch_id == batch_id, c.status == CallStatus.QUEUED.value)))).scalars())


def _call_row(account_id: str, batch_id: str, new: NewCall, due: datetime, now: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()), "account_id": account_id, "status": CallStatus.QUEUED.value,
        "to_number": new.to_number, "from_number": new.from_number, "objective": new.objective,
        "context": new.context, "fields": [f.to_json() for f in new.fields], "webhook_url": new.webhook_url,
        "voice": new.voice, "language": new.language, "language_source": new.language_source,
        "max_duration_seconds": new.max_duration_seconds, "metadata": dict(new.metadata),
        "voicemail_message": new.voicemail_message, "created_at": now, "scheduled_at": new.scheduled_at,
        # Always set: a batch's calls are paced by the claim's concurrent-call check, not placement's.
        "not_before": due, "hold_reason": new.hold_reason,
        "retry": dict(new.retry) if new.retry is not None else None, "attempt": 1, "batch_id": batch_id,
        "transfer": dict(new.transfer) if new.transfer is not None else None,
    }
