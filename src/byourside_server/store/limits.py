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

from sqlalchemy import and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from byourside_server.domain import ACTIVE_STATUSES
from byourside_server.errors import IdempotencyConflict, OverMinuteCap, RateLimited
from byourside_server.store import schema as t

IDEMPOTENCY_TTL = timedelta(hours=24)
ACTIVE = [s.value for s in ACTIVE_STATUSES]
CONCURRENCY_RETRY_AFTER_SECONDS = 5


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


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
    conn: AsyncConnection, account_id: str, limits: Any, max_duration: int, now: datetime
) -> int:
    """Raise when a per-account limit is reached; return the call's effective max duration."""
    c = t.calls.c
    window_start = now - timedelta(seconds=60)
    recent, oldest = (
        await conn.execute(
            select(func.count(), func.min(c.created_at)).where(
                and_(c.account_id == account_id, c.created_at > window_start)
            )
        )
    ).one()
    if recent >= limits.calls_per_minute:
        wait = 60 - (now - oldest).total_seconds() if oldest else 60
        raise RateLimited(
            f"This account may place {limits.calls_per_minute} calls per minute. Retry after the Retry-After seconds.",
            retry_after=max(1, math.ceil(wait)),
        )
    active, reserved = (
        await conn.execute(
            select(func.count(), func.coalesce(func.sum(c.max_duration_seconds), 0)).where(
                and_(c.account_id == account_id, c.status.in_(ACTIVE))
            )
        )
    ).one()
    if active >= limits.max_concurrent_calls:
        raise RateLimited(
            f"This account may have {limits.max_concurrent_calls} calls active at once. Retry after the Retry-After seconds.",
            retry_after=CONCURRENCY_RETRY_AFTER_SECONDS,
        )
    used = (
        await conn.execute(
            select(func.coalesce(func.sum(c.duration_seconds), 0)).where(
                and_(c.account_id == account_id, c.created_at >= _month_start(now), c.status.not_in(ACTIVE))
            )
        )
    ).scalar_one()
    remaining = limits.monthly_minutes * 60 - int(used) - int(reserved)
    if remaining <= 0:
        raise OverMinuteCap()
    # A call never outlasts what is left of the allowance.
    return max(1, min(max_duration, remaining))
