"""Usage as running totals: calls and answered seconds per account and month, and per day and
final status.

``record_ended`` runs inside the transaction that moves a call to a terminal status
(``CallRepo._transition``), so a total commits or rolls back with the status change that
earns it, and a call is counted exactly once (a terminal status never changes again). The
minute cap then reads one ``usage_months`` row per placement, whatever the account's history.

Month and day are UTC, of the call's creation: the same calls the cap counted when it summed
``calls`` for the month (a call placed on the 31st at 23:59 counts in that month).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from byourside_server.domain import ACTIVE_STATUSES
from byourside_server.store import schema as t
from byourside_server.store.database import Database
from byourside_server.store.records import CallRecord

_ACTIVE = [s.value for s in ACTIVE_STATUSES]


def month_key(when: datetime) -> str:
    return when.strftime("%Y-%m")


def day_key(when: datetime | date) -> str:
    return when.strftime("%Y-%m-%d")


async def _add(conn: AsyncConnection, table, keys: dict, seconds: int) -> None:  # noqa: ANN001
    """INSERT the row for ``keys`` with one call, or add one call and ``seconds`` to it (atomic on both stores)."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(table).values(**keys, calls=1, seconds=seconds)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={"calls": table.c.calls + 1, "seconds": table.c.seconds + statement.excluded.seconds},
    )
    await conn.execute(statement)


async def record_ended(conn: AsyncConnection, call: CallRecord) -> None:
    """Count ``call``, which has just reached its terminal status on ``conn``'s transaction."""
    seconds = int(call.duration_seconds or 0)
    await _add(conn, t.usage_months, {"account_id": call.account_id, "month": month_key(call.created_at)}, seconds)
    await _add(conn, t.usage_days, {"account_id": call.account_id, "day": day_key(call.created_at),
                                    "status": call.status.value}, seconds)


async def month_seconds(conn: AsyncConnection, account_id: str, now: datetime) -> int:
    """Answered seconds of the calls placed this month (UTC) that have ended: one row."""
    u = t.usage_months.c
    used = (await conn.execute(
        select(u.seconds).where(and_(u.account_id == account_id, u.month == month_key(now)))
    )).scalar_one_or_none()
    return int(used or 0)


@dataclass(frozen=True)
class UsageDay:
    day: str  # "2026-12-01"
    status: str  # the calls' final status
    calls: int
    seconds: int


@dataclass(frozen=True)
class UsageReport:
    days: list[UsageDay]  # oldest first, one entry per day and status that had calls
    monthly_minutes: int  # the account's cap
    month_seconds: int  # answered seconds of this month's ended calls (what the cap counts)
    reserved_seconds: int  # the maximum durations of the account's calls not yet ended
    active_calls: int


class UsageRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def report(self, account_id: str, first_day: date, last_day: date, now: datetime) -> UsageReport:
        """Ended calls per day and status from ``first_day`` to ``last_day`` (inclusive, UTC), and the month so far."""
        d = t.usage_days.c
        query = (
            select(d.day, d.status, d.calls, d.seconds)
            .where(and_(d.account_id == account_id, d.day >= day_key(first_day), d.day <= day_key(last_day)))
            .order_by(d.day, d.status)
        )
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
            used = await month_seconds(conn, account_id, now)
            cap = (await conn.execute(
                select(t.accounts.c.monthly_minutes).where(t.accounts.c.id == account_id))).scalar_one()
            c = t.calls.c
            active, reserved = (await conn.execute(
                select(func.count(), func.coalesce(func.sum(c.max_duration_seconds), 0))
                .where(and_(c.account_id == account_id, c.status.in_(_ACTIVE)))
            )).one()
        days = [UsageDay(r.day, r.status, int(r.calls), int(r.seconds)) for r in rows]
        return UsageReport(days, int(cap), used, int(reserved), int(active))
