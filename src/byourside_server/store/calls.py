"""Calls: creation (limits + idempotency in one transaction, store/limits.py), listing,
cancel, and the worker side: claim with a lease, heartbeat, forward-only transitions.

Every transition is a conditional UPDATE on the current status (and, for the
worker side, on the lease owner), so statuses only move forward and two
workers can never both act on one call. ``dial_started_at`` is written and
committed before a call is dialled: a call whose lease expires after that point
is failed (``worker_lost``), never dialled again.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Mapping, Sequence

import structlog
from sqlalchemy import and_, func, insert, null, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from byourside_server.clock import Clock
from byourside_server.domain import ACTIVE_STATUSES, CallStatus, EndReason, Turn
from byourside_server.errors import CallerIdNotOwned, CallNotActive, NotFound, StoreUnavailable, Unauthorized
from byourside_server.guardrails.text import possible_id, scrub
from byourside_server.store import schema as t
from byourside_server.store.call_types import CallMetrics, CallOutcome, Created, NewCall
from byourside_server.store.compliance import claimable, may_start
from byourside_server.store.cursors import decode_cursor, encode_cursor
from byourside_server.store.database import Database
from byourside_server.store.limits import check_limits, idempotent_replay
from byourside_server.store.notify import CALL_QUEUED, CANCEL_REQUESTED, notify
from byourside_server.store.usage import record_ended
from byourside_server.store.records import Account, CallRecord, call_from_row

__all__ = ["CallMetrics", "CallOutcome", "CallRepo", "Created", "NewCall", "TransitionHook"]

log = structlog.get_logger(__name__)

_ACTIVE = [s.value for s in ACTIVE_STATUSES]

# Called inside the transaction of every status change, with the call as the UPDATE left it
# (the webhook outbox: services.py passes ``webhooks.events.enqueue_for_transition``).
TransitionHook = Callable[[AsyncConnection, CallRecord, CallStatus, datetime], Awaitable[Any]]


class CallRepo:
    def __init__(self, db: Database, clock: Clock, *, on_transition: TransitionHook | None = None) -> None:
        self.db = db
        self.clock = clock
        self._on_transition = on_transition
        self._unreapable: set[str] = set()  # calls the reaper failed to move (already logged)

    # API side

    async def create(
        self,
        account: Account,
        new: NewCall,
        *,
        idempotency_key: str | None,
        request_hash: str | None,
        respond: Callable[[CallRecord], Mapping[str, Any]],
        key_id: str | None = None,
    ) -> Created:
        """Queue ``new`` for ``account``: one transaction, one round trip for the checks before the limits.

        That first statement locks the account row (on PostgreSQL, where this serialises creations
        per account; SQLite's write lock does the same) so limit checks neither race nor use stale
        values, and in the same read checks that the account owns the caller ID (else
        ``CallerIdNotOwned``) and that the key ``key_id`` is not revoked (else ``Unauthorized``:
        a key verified from a cache never places a call after its revocation has committed).
        """
        now = self.clock.now()
        a, n, k = t.accounts.c, t.phone_numbers.c, t.api_keys.c
        owns = select(n.id).where(and_(n.account_id == a.id, n.e164 == new.from_number)).exists()
        live_key = select(k.id).where(and_(k.id == key_id, k.revoked_at.is_(None))).exists() if key_id else true()
        async with self.db.write() as conn:
            limits = (
                await conn.execute(
                    select(a.calls_per_minute, a.max_concurrent_calls, a.monthly_minutes,
                           owns.label("owns_caller_id"), live_key.label("key_live"))
                    .where(a.id == account.id)
                    .with_for_update(of=t.accounts)
                )
            ).one()
            if not limits.key_live:
                raise Unauthorized()
            if not limits.owns_caller_id:
                raise CallerIdNotOwned()
            if idempotency_key is not None:
                replay = await idempotent_replay(conn, account.id, idempotency_key, request_hash, now)
                if replay is not None:
                    return Created(call=None, response=replay, replayed=True)
            max_duration = await check_limits(conn, account.id, limits, new.max_duration_seconds, now,
                                              waiting=new.not_before is not None and new.not_before > now)
            row = {
                "id": str(uuid.uuid4()),
                "account_id": account.id,
                "status": CallStatus.QUEUED.value,
                "to_number": new.to_number,
                "from_number": new.from_number,
                "objective": new.objective,
                "context": new.context,
                "fields": [f.to_json() for f in new.fields],
                "webhook_url": new.webhook_url,
                "voice": new.voice,
                "language": new.language,
                "language_source": new.language_source,
                "max_duration_seconds": max_duration,
                "metadata": dict(new.metadata),
                "voicemail_message": new.voicemail_message,
                "created_at": now,
                "scheduled_at": new.scheduled_at,
                "not_before": new.not_before,
                "hold_reason": new.hold_reason,
                "retry": dict(new.retry) if new.retry is not None else None,
                "transfer": dict(new.transfer) if new.transfer is not None else None,
                "attempt": 1,
            }
            await conn.execute(insert(t.calls).values(**row))
            await notify(conn, CALL_QUEUED)
            call = call_from_row({c.name: row.get(c.name) for c in t.calls.c})
            response = dict(respond(call))
            if idempotency_key is not None:
                await conn.execute(
                    insert(t.idempotency_keys).values(
                        account_id=account.id,
                        key=idempotency_key,
                        request_hash=request_hash,
                        call_id=call.id,
                        response=response,
                        created_at=now,
                    )
                )
        return Created(call=call, response=response, replayed=False)

    async def get(self, account_id: str, call_id: str) -> CallRecord:
        if not possible_id(call_id):
            raise NotFound()
        async with self.db.query() as conn:
            row = (
                await conn.execute(select(t.calls).where(and_(t.calls.c.id == call_id, t.calls.c.account_id == account_id)))
            ).mappings().first()
        if row is None:
            raise NotFound()
        return call_from_row(row)

    async def metrics(self, window_seconds: float, max_latency_calls: int = 2000) -> CallMetrics:
        """Counts across every account (operators only) and the newest ``max_latency_calls`` latency reports."""
        c = t.calls.c
        since = self.clock.now() - timedelta(seconds=window_seconds)
        async with self.db.read() as conn:
            active = (await conn.execute(
                select(c.status, func.count()).where(c.status.in_(_ACTIVE)).group_by(c.status))).all()
            # Grouped by an expression, not the column: SQLite would otherwise walk the status index
            # (every call ever) to group, instead of the ended_at range of the window.
            ended_status = c.status.concat("")
            ended = (await conn.execute(
                select(ended_status, func.count()).where(c.ended_at >= since).group_by(ended_status))).all()
            latencies = (await conn.execute(
                select(c.latency).where(and_(c.ended_at >= since, c.latency.is_not(None)))
                .order_by(c.ended_at.desc()).limit(max_latency_calls))).scalars().all()
        return CallMetrics(dict(active), dict(ended), [r for r in latencies if isinstance(r, dict)])

    async def get_any(self, call_id: str) -> CallRecord | None:
        if not possible_id(call_id):
            return None
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.calls).where(t.calls.c.id == call_id))).mappings().first()
        return call_from_row(row) if row else None

    async def list(
        self, account_id: str, *, limit: int, cursor: str | None = None, status: CallStatus | None = None
    ) -> tuple[list[CallRecord], str | None]:
        c = t.calls.c
        query = select(t.calls).where(c.account_id == account_id)
        if status is not None:
            query = query.where(c.status == status.value)
        if cursor:
            when, last_id = decode_cursor(cursor)
            query = query.where(or_(c.created_at < when, and_(c.created_at == when, c.id < last_id)))
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
        async with self.db.query() as conn:
            rows = (await conn.execute(query)).mappings().all()
        calls = [call_from_row(r) for r in rows[:limit]]
        next_cursor = encode_cursor(calls[-1]) if len(rows) > limit else None
        return calls, next_cursor

    async def request_cancel(self, account_id: str, call_id: str) -> CallRecord:
        """Queued calls end at once; dialling or live ones are flagged for their worker."""
        if not possible_id(call_id):
            raise NotFound()
        now = self.clock.now()
        c = t.calls.c
        async with self.db.write() as conn:
            row = (
                await conn.execute(select(t.calls).where(and_(c.id == call_id, c.account_id == account_id)))
            ).mappings().first()
            if row is None:
                raise NotFound()
            status = CallStatus(row["status"])
            if status.terminal:
                raise CallNotActive()
            if status is CallStatus.QUEUED and row["dial_started_at"] is None:
                ended = await self._transition(
                    conn,
                    call_id,
                    CallStatus.FAILED,
                    {"end_reason": EndReason.CANCELED.value, "ended_at": now, "lease_owner": None, "lease_expires_at": None},
                    from_statuses=[CallStatus.QUEUED],
                    extra_where=[c.dial_started_at.is_(None)],
                )
                if not ended:  # a worker started dialling in between: flag it instead
                    await conn.execute(update(t.calls).where(c.id == call_id).values(cancel_requested_at=now))
                    await notify(conn, CANCEL_REQUESTED)
            elif row["cancel_requested_at"] is None:
                await conn.execute(update(t.calls).where(c.id == call_id).values(cancel_requested_at=now))
                await notify(conn, CANCEL_REQUESTED)
            row = (await conn.execute(select(t.calls).where(c.id == call_id))).mappings().one()
        return call_from_row(row)

    # Worker side

    async def claim_next(self, worker_id: str, lease_seconds: float) -> CallRecord | None:
        """Lease the oldest queued call nobody holds (``SKIP LOCKED`` on PostgreSQL)."""
        now = self.clock.now()
        c = t.calls.c
        pick = (
            select(c.id, c.account_id, c.not_before)
            .where(and_(c.status == CallStatus.QUEUED.value, or_(c.lease_expires_at.is_(None), c.lease_expires_at < now),
                        claimable(now)))
            .order_by(c.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        async with self.db.write() as conn:
            picked = (await conn.execute(pick)).first()
            if picked is None:
                return None
            call_id = picked.id
            if picked.not_before is not None and not await may_start(conn, picked.id, picked.account_id, now):
                return None
            row = (
                await conn.execute(
                    update(t.calls)
                    .where(c.id == call_id)
                    .values(lease_owner=worker_id, lease_expires_at=now + timedelta(seconds=lease_seconds))
                    .returning(*t.calls.c)
                )
            ).mappings().one()
        return call_from_row(row)

    async def mark_dialing(self, call_id: str, worker_id: str) -> bool:
        """Record that dialling starts. False means: do not dial (canceled or lease lost)."""
        c = t.calls.c
        async with self.db.write() as conn:
            return await self._transition(
                conn,
                call_id,
                CallStatus.DIALING,
                {"dial_started_at": self.clock.now()},
                from_statuses=[CallStatus.QUEUED],
                extra_where=[c.lease_owner == worker_id, c.dial_started_at.is_(None), c.cancel_requested_at.is_(None)],
            )

    async def mark_in_progress(self, call_id: str, worker_id: str) -> bool:
        async with self.db.write() as conn:
            return await self._transition(
                conn,
                call_id,
                CallStatus.IN_PROGRESS,
                {"started_at": self.clock.now()},
                from_statuses=[CallStatus.DIALING],
                extra_where=[t.calls.c.lease_owner == worker_id],
            )

    async def finish(self, call_id: str, worker_id: str, outcome: CallOutcome) -> bool:
        # Words and values come from speech recognition and models, not a validated request:
        # ``scrub`` keeps NUL, lone surrogates and NaN from making the final write fail.
        values: dict[str, Any] = {
            "end_reason": scrub(str(outcome.end_reason)),
            "summary": scrub(outcome.summary),
            "extracted": scrub(dict(outcome.extracted)) if outcome.extracted is not None else None,
            "turns": scrub([turn.to_json() for turn in outcome.turns]) if outcome.turns is not None else None,
            "objective_met": outcome.objective_met,
            "duration_seconds": outcome.duration_seconds,
            "recording_path": outcome.recording_path,
            "evidence": scrub(dict(outcome.evidence)) if outcome.evidence is not None else None,
            "latency": scrub(outcome.latency) if outcome.latency is not None else null(),  # SQL NULL, not JSON null
            "answered_by": outcome.answered_by,
            "answered_by_evidence": scrub(dict(outcome.answered_by_evidence))
            if outcome.answered_by_evidence is not None else null(),
            "ended_at": self.clock.now(),
            "lease_owner": None,
            "lease_expires_at": None,
        }
        async with self.db.write() as conn:
            return await self._transition(
                conn,
                call_id,
                outcome.status,
                values,
                from_statuses=list(ACTIVE_STATUSES),
                extra_where=[t.calls.c.lease_owner == worker_id],
            )

    async def save_live_turns(self, call_id: str, worker_id: str, turns: Sequence[Turn]) -> None:
        """Store the transcript so far, so clients polling a live call can follow it."""
        c = t.calls.c
        async with self.db.write() as conn:
            await conn.execute(
                update(t.calls)
                .where(and_(c.id == call_id, c.lease_owner == worker_id, c.status == CallStatus.IN_PROGRESS.value))
                .values(turns=scrub([turn.to_json() for turn in turns]))
            )

    async def release(self, call_id: str, worker_id: str) -> None:
        """Give back a call this worker claimed but never dialled."""
        c = t.calls.c
        async with self.db.write() as conn:
            await conn.execute(
                update(t.calls)
                .where(and_(c.id == call_id, c.lease_owner == worker_id, c.status == CallStatus.QUEUED.value))
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def heartbeat(self, worker_id: str, call_ids: Sequence[str], lease_seconds: float) -> tuple[set[str], set[str]]:
        """Extend leases. Returns (ids whose lease this worker no longer holds, ids with a cancel request)."""
        if not call_ids:
            return set(), set()
        c = t.calls.c
        async with self.db.write() as conn:
            await conn.execute(
                update(t.calls)
                .where(and_(c.id.in_(call_ids), c.lease_owner == worker_id, c.status.in_(_ACTIVE)))
                .values(lease_expires_at=self.clock.now() + timedelta(seconds=lease_seconds))
            )
            rows = (
                await conn.execute(select(c.id, c.lease_owner, c.status, c.cancel_requested_at).where(c.id.in_(call_ids)))
            ).all()
        held = {r.id for r in rows if r.lease_owner == worker_id and r.status in _ACTIVE}
        canceled = {r.id for r in rows if r.id in held and r.cancel_requested_at is not None}
        return set(call_ids) - held, canceled

    async def reap_expired(self) -> list[str]:
        """Fail dialled calls whose worker vanished (lease expired). Undialled ones simply become claimable.

        Each call is failed in its own transaction: a call whose transition fails (a row
        no status change can be written for) is logged by id and skipped, never blocking
        the others, and tried again next round. An outage stops the round (``StoreUnavailable``).
        """
        now = self.clock.now()
        c = t.calls.c
        async with self.db.read() as conn:
            ids = (
                await conn.execute(
                    select(c.id).where(
                        and_(
                            c.status.in_([CallStatus.DIALING.value, CallStatus.IN_PROGRESS.value]),
                            c.lease_expires_at < now,
                        )
                    )
                )
            ).scalars().all()
        reaped = []
        for call_id in ids:
            values = {"end_reason": EndReason.WORKER_LOST.value, "ended_at": now, "lease_owner": None, "lease_expires_at": None}
            try:
                async with self.db.write() as conn:
                    # Conditional on the lease still being expired: a call picked up meanwhile is left alone.
                    if await self._transition(
                        conn,
                        call_id,
                        CallStatus.FAILED,
                        values,
                        from_statuses=[CallStatus.DIALING, CallStatus.IN_PROGRESS],
                        extra_where=[c.lease_expires_at < now],
                    ):
                        reaped.append(call_id)
            except StoreUnavailable:
                raise
            except Exception:  # noqa: BLE001  (one bad row must not stop the rest)
                if call_id not in self._unreapable:  # retried every heartbeat; logged once per process
                    self._unreapable.add(call_id)
                    log.exception("call_reap_failed", call_id=call_id)
        return reaped

    async def events(self, call_id: str) -> list[tuple[str, str, datetime]]:
        e = t.call_events.c
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(e.event, e.status, e.created_at).where(e.call_id == call_id).order_by(e.created_at)
            )
            return [(r.event, r.status, r.created_at) for r in rows]

    async def _transition(
        self,
        conn: AsyncConnection,
        call_id: str,
        new_status: CallStatus,
        values: Mapping[str, Any],
        *,
        from_statuses: Sequence[CallStatus],
        extra_where: Sequence[Any] = (),
    ) -> bool:
        """Move a call forward if it is still in one of ``from_statuses``; write its event in the same transaction.

        The transition hook (the webhook outbox) runs in the same transaction too, with the
        call as this UPDATE left it, so whatever it writes commits or rolls back with the change;
        so does the usage total of a call that ends (store/usage.py).
        """
        c = t.calls.c
        row = (
            await conn.execute(
                update(t.calls)
                .where(and_(c.id == call_id, c.status.in_([s.value for s in from_statuses]), *extra_where))
                .values(status=new_status.value, **values)
                .returning(*t.calls.c)
            )
        ).mappings().first()
        if row is None:
            return False
        now = self.clock.now()
        await conn.execute(
            insert(t.call_events).values(
                id=str(uuid.uuid4()),
                call_id=call_id,
                account_id=row["account_id"],
                event=f"call.{new_status.value}",
                status=new_status.value,
                created_at=now,
            )
        )
        call = call_from_row(row)
        if new_status.terminal:  # the usage totals move with the status that ends the call
            await record_ended(conn, call)
        if self._on_transition is not None:
            await self._on_transition(conn, call, new_status, now)
        return True
