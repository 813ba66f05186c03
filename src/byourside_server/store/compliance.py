"""The store side of responsible calling (compliance/): an account's calling hours, holding a
claimed call until a later time, and, inside a finished call's own transaction, its opt-out
and the next attempt of its retry policy."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from byourside_server.clock import Clock
from byourside_server.compliance.hours import CallingHours, parse_days
from byourside_server.domain import CallStatus
from byourside_server.store import schema as t
from byourside_server.store.database import Database
from byourside_server.store.records import CallRecord
from byourside_server.store.usage import month_seconds

# A due call that finds the month's minutes used up looks again after this.
MINUTE_CAP_RECHECK = timedelta(minutes=15)

# The columns a retry copies from the call before it: the request as the client sent it.
_REQUEST_COLUMNS = ("account_id", "to_number", "from_number", "objective", "context", "fields", "webhook_url", "voice",
                    "language", "language_source", "max_duration_seconds", "metadata", "voicemail_message", "retry",
                    "batch_id", "transfer")


def _on_the_line(account_id: Any, now: datetime, calls: Any = None) -> Any:
    """An account's calls that take a line now: dialling, live, or claimed for dialling (index
    ``ix_calls_account_status_lease``: the account's many waiting calls are not read)."""
    b = (calls if calls is not None else t.calls.alias("busy")).c
    return and_(b.account_id == account_id,
                or_(b.status.in_([CallStatus.DIALING.value, CallStatus.IN_PROGRESS.value]),
                    and_(b.status == CallStatus.QUEUED.value, b.lease_expires_at > now)))


def claimable(now: datetime) -> ColumnElement[bool]:
    """The claim's condition for held and scheduled calls: due, and the account below its
    concurrent-call limit. Such calls were not counted when queued (limits count a call
    when it starts); calls without ``not_before`` passed the limits at placement.

    The accounts at their limit are found once per claim (calls dialling or live, grouped by
    account), not per queued row; ``may_start`` then re-checks exactly, claimed calls included."""
    c = t.calls.c
    b = t.calls.alias("busy").c
    a = t.accounts.c
    cap = select(a.max_concurrent_calls).where(a.id == b.account_id).scalar_subquery()
    full = (select(b.account_id).where(b.status.in_([CallStatus.DIALING.value, CallStatus.IN_PROGRESS.value]))
            .group_by(b.account_id).having(func.count() >= cap))
    return or_(c.not_before.is_(None), and_(c.not_before <= now, c.account_id.not_in(full)))


async def may_start(conn: AsyncConnection, call_id: str, account_id: str, now: datetime) -> bool:
    """Whether a due held or scheduled call may be claimed now, with the account row locked (as
    placement locks it) so workers claiming at the same moment cannot together pass a limit.

    Concurrent calls: ``claimable`` already checked, re-checked here with claimed calls counted.
    Monthly minutes (the call's were not reserved while it waited): the calls on the line hold
    theirs; when the allowance is used up, the call is held another ``MINUTE_CAP_RECHECK``
    (``holdReason: minute_cap``) rather than dialled."""
    a = t.accounts.c
    c = t.calls.c
    limits = (await conn.execute(select(a.max_concurrent_calls, a.monthly_minutes).where(a.id == account_id)
                                 .with_for_update())).one()
    busy, reserved = (await conn.execute(
        select(func.count(), func.coalesce(func.sum(c.max_duration_seconds), 0))
        .where(_on_the_line(account_id, now, t.calls), c.id != call_id))).one()
    if busy >= limits.max_concurrent_calls:
        return False
    if limits.monthly_minutes * 60 - await month_seconds(conn, account_id, now) - int(reserved) > 0:
        return True
    await conn.execute(update(t.calls).where(c.id == call_id).values(
        not_before=now + MINUTE_CAP_RECHECK, hold_reason="minute_cap"))
    return False


async def calling_hours_in(conn: AsyncConnection, account_id: str) -> CallingHours | None:
    """The account's own calling hours, or None (the settings' defaults apply)."""
    h = t.calling_hours.c
    row = (await conn.execute(select(t.calling_hours).where(h.account_id == account_id))).mappings().first()
    if row is None:
        return None
    return CallingHours(row["start_minute"], row["end_minute"], parse_days(row["days"]))


async def mark_opt_out_in(conn: AsyncConnection, call_id: str) -> None:
    await conn.execute(update(t.calls).where(t.calls.c.id == call_id).values(opt_out=True))


async def insert_attempt_in(conn: AsyncConnection, previous: CallRecord, *, attempt: int, not_before: datetime,
                            hold_reason: str, now: datetime) -> str:
    """Queue the next attempt of ``previous``'s chain (claimable from ``not_before``); returns its id.

    The chain's first call lists every attempt's id (``attempts``)."""
    c = t.calls.c
    source = (await conn.execute(select(*(c[name] for name in _REQUEST_COLUMNS)).where(c.id == previous.id))).mappings().one()
    root = previous.attempt_of or previous.id
    new_id = str(uuid.uuid4())
    await conn.execute(insert(t.calls).values(
        id=new_id, status=CallStatus.QUEUED.value, created_at=now, not_before=not_before, hold_reason=hold_reason,
        attempt=attempt, attempt_of=root, **dict(source)))
    chain = (await conn.execute(select(c.attempts).where(c.id == root))).scalar_one_or_none() or [root]
    await conn.execute(update(t.calls).where(c.id == root).values(attempts=[*chain, new_id]))
    return new_id


class ComplianceRepo:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def calling_hours(self, account_id: str) -> CallingHours | None:
        async with self.db.read() as conn:
            return await calling_hours_in(conn, account_id)

    async def set_calling_hours(self, account_id: str, hours: CallingHours | None) -> None:
        """Set the account's calling hours; None goes back to the settings' defaults."""
        h = t.calling_hours.c
        async with self.db.write() as conn:
            await conn.execute(delete(t.calling_hours).where(h.account_id == account_id))
            if hours is not None:
                await conn.execute(insert(t.calling_hours).values(
                    account_id=account_id, start_minute=hours.start_minute, end_minute=hours.end_minute,
                    days=hours.days_text, updated_at=self.clock.now()))

    async def hold(self, call_id: str, worker_id: str, until: datetime, reason: str) -> bool:
        """Give back a claimed, undialled call to be claimed again from ``until``."""
        c = t.calls.c
        async with self.db.write() as conn:
            result = await conn.execute(
                update(t.calls)
                .where(and_(c.id == call_id, c.lease_owner == worker_id, c.status == CallStatus.QUEUED.value,
                            c.dial_started_at.is_(None)))
                .values(not_before=until, hold_reason=reason, lease_owner=None, lease_expires_at=None))
        return result.rowcount > 0

