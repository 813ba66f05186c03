"""The checks of a new call inside its creation transaction: idempotency replay and the
per-account limits (calls per minute, calls at once, minutes per month).

Both run on the connection of ``CallRepo.create``'s transaction, after the account row is
locked, so they neither race each other nor read stale values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from byourside_server.domain import ACTIVE_STATUSES, CallStatus
from byourside_server.errors import IdempotencyConflict, OverMinuteCap, RateLimited
from byourside_server.store import schema as t
from byourside_server.store.usage import month_key

IDEMPOTENCY_TTL = timedelta(hours=24)
ACTIVE = [s.value for s in ACTIVE_STATUSES]
CONCURRENCY_RETRY_AFTER_SECONDS = 5


async def idempotent_replay(
    conn: AsyncConnection, account_id: str, key: str, request_hash: str | None, now: datetime
) -> Mapping[str, Any] | None:
    k = t.idempotency_keys.c
    where = and_(k.account_id == account_id, k.key == key)
    row = (await conn.execute(select(t.idempotency_keys).where(where))).mappings().first()
    if row is None:
        return None
    if now - row["created_at"] > IDEMPOTENCY_TTL:
        await conn.execute(delete(t.idempotency_keys).where(where))
        return None
    if row["request_hash"] != request_hash:
        raise IdempotencyConflict()
    return row["response"]


async def check_limits(
    conn: AsyncConnection, account_id: str, limits: Any, max_duration: int, now: datetime, *, waiting: bool = False
) -> int:
    """Raise when a per-account limit is reached; return the call's effective max duration.

    A call with ``not_before`` (scheduled, held for calling hours, a retry, a batch's) counts
    against the per-minute and concurrent limits once a worker has started it, not while it
    is queued: a new one that waits skips them here, and queued ones are left out of both
    counts. The worker's claim applies the concurrent limit when it falls due
    (store/compliance.py ``claimable``/``may_start``), and reserves its minutes then."""
    c, u = t.calls.c, t.usage_months.c
    window_start = now - timedelta(seconds=60)
    # Held, scheduled and batch calls (``not_before`` set) count once a worker has started them.
    not_waiting = or_(c.not_before.is_(None), c.status != CallStatus.QUEUED.value)
    # One statement (one round trip) for every figure; each part reads an index range bounded by
    # the calls of the last minute or the calls not yet ended, never the account's history.
    placed_recently = and_(c.account_id == account_id, c.created_at > window_start, not_waiting)
    unended = and_(c.account_id == account_id, c.status.in_(ACTIVE))
    figures = (
        await conn.execute(select(
            select(func.count()).where(placed_recently).scalar_subquery().label("recent"),
            select(func.min(c.created_at)).where(placed_recently).scalar_subquery().label("oldest"),
            select(func.count().filter(not_waiting)).where(unended).scalar_subquery().label("active"),
            select(func.coalesce(func.sum(c.max_duration_seconds).filter(not_waiting), 0))
            .where(unended).scalar_subquery().label("reserved"),
            # Ended calls' seconds this month: one running-total row (store/usage.py), not a sum over the month.
            select(u.seconds).where(and_(u.account_id == account_id, u.month == month_key(now)))
            .scalar_subquery().label("used"),
        ))
    ).one()
    recent, oldest, active, reserved = figures.recent, figures.oldest, figures.active, figures.reserved
    used = figures.used or 0
    if recent >= limits.calls_per_minute and not waiting:
        wait = 60 - (now - oldest).total_seconds() if oldest else 60
        raise RateLimited(
            f"This account may place {limits.calls_per_minute} calls per minute. Retry after the Retry-After seconds.",
            retry_after=max(1, math.ceil(wait)),
        )
    if active >= limits.max_concurrent_calls and not waiting:
        raise RateLimited(
            f"This account may have {limits.max_concurrent_calls} calls active at once. Retry after the Retry-After seconds.",
            retry_after=CONCURRENCY_RETRY_AFTER_SECONDS,
        )
    remaining = limits.monthly_minutes * 60 - int(used) - int(reserved)
    if remaining <= 0:
        raise OverMinuteCap()
    # A call never outlasts what is left of the allowance.
    return max(1, min(max_duration, remaining))
