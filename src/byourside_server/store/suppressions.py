"""The do-not-call list: numbers an account never calls (``suppressions`` table).

Written by the API and CLI (``source`` api, cli, csv) and by the end of a call in which the
callee asked not to be called again (``opt_out``, in that call's own transaction:
``add_in``). Placement and the dial gate read it (``contains``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from byourside_server.clock import Clock
from byourside_server.errors import InvalidRequest
from byourside_server.guardrails.numbers import E164_RE
from byourside_server.store import schema as t
from byourside_server.store.database import Database

SOURCES = ("api", "cli", "csv", "opt_out")


@dataclass(frozen=True)
class Suppression:
    number: str
    source: str
    call_id: str | None
    note: str | None
    created_at: datetime


def _from_row(row) -> Suppression:  # noqa: ANN001
    return Suppression(row["e164"], row["source"], row["call_id"], row["note"], row["created_at"])


def _encode_cursor(number: str) -> str:
    return base64.urlsafe_b64encode(number.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        if len(cursor) > 40 or not cursor.isascii():
            raise ValueError
        number = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        if not E164_RE.fullmatch(number):
            raise ValueError
        return number
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("'cursor' is not a cursor this server issued; pass nextCursor back unchanged.") from exc


async def contains_in(conn: AsyncConnection, account_id: str, e164: str) -> bool:
    s = t.suppressions.c
    found = await conn.execute(select(s.e164).where(and_(s.account_id == account_id, s.e164 == e164)))
    return found.first() is not None


async def add_in(conn: AsyncConnection, account_id: str, numbers: Iterable[str], *, source: str, now: datetime,
                 call_id: str | None = None, note: str | None = None) -> int:
    """Add numbers not yet on the list, on ``conn``'s transaction; returns how many were new."""
    s = t.suppressions.c
    wanted = list(dict.fromkeys(numbers))
    added = 0
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        present = set((await conn.execute(
            select(s.e164).where(and_(s.account_id == account_id, s.e164.in_(chunk))))).scalars())
        rows = [{"account_id": account_id, "e164": n, "source": source, "call_id": call_id, "note": note,
                 "created_at": now} for n in chunk if n not in present]
        if rows:
            await conn.execute(insert(t.suppressions), rows)
            added += len(rows)
    return added


class SuppressionRepo:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def contains(self, account_id: str, e164: str) -> bool:
        async with self.db.read() as conn:
            return await contains_in(conn, account_id, e164)

    async def among(self, account_id: str, numbers: Iterable[str]) -> set[str]:
        """Which of ``numbers`` are on the account's list."""
        s = t.suppressions.c
        wanted = list(numbers)
        found: set[str] = set()
        async with self.db.read() as conn:
            for start in range(0, len(wanted), 500):
                found.update((await conn.execute(select(s.e164).where(and_(
                    s.account_id == account_id, s.e164.in_(wanted[start:start + 500]))))).scalars())
        return found

    async def add(self, account_id: str, numbers: Iterable[str], *, source: str, note: str | None = None) -> int:
        """Add numbers (already E.164); returns how many were not on the list before."""
        async with self.db.write() as conn:
            return await add_in(conn, account_id, numbers, source=source, now=self.clock.now(), note=note)

    async def remove(self, account_id: str, e164: str) -> bool:
        s = t.suppressions.c
        async with self.db.write() as conn:
            result = await conn.execute(delete(t.suppressions).where(and_(s.account_id == account_id, s.e164 == e164)))
        return result.rowcount > 0

    async def get(self, account_id: str, e164: str) -> Suppression | None:
        s = t.suppressions.c
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.suppressions).where(
                and_(s.account_id == account_id, s.e164 == e164)))).mappings().first()
        return _from_row(row) if row else None

    async def count(self, account_id: str) -> int:
        s = t.suppressions.c
        async with self.db.read() as conn:
            return (await conn.execute(select(func.count()).where(s.account_id == account_id))).scalar_one()

    async def list(self, account_id: str, *, limit: int, cursor: str | None = None) -> tuple[list[Suppression], str | None]:
        """By number, paged with an opaque cursor."""
        s = t.suppressions.c
        query = select(t.suppressions).where(s.account_id == account_id)
        if cursor:
            query = query.where(s.e164 > _decode_cursor(cursor))
        async with self.db.read() as conn:
            rows = (await conn.execute(query.order_by(s.e164).limit(limit + 1))).mappings().all()
        items = [_from_row(r) for r in rows[:limit]]
        return items, _encode_cursor(items[-1].number) if len(rows) > limit else None
