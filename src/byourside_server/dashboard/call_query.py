"""The calls list's filters: status, a date range and a search, newest first with the API's cursors.

The dashboard reads the same ``calls`` table through the store's row mapping
(``call_from_row``) and cursor format, so a page here shows exactly what
``GET /v1/agent/calls`` would; it only adds filters the API does not have.
A search matches the objective, the summary, the call id, or the destination's digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import urlencode

from sqlalchemy import and_, or_, select

from byourside_server.domain import CallStatus
from byourside_server.errors import InvalidRequest
from byourside_server.store import schema as t
from byourside_server.store.cursors import decode_cursor, encode_cursor
from byourside_server.store.database import Database
from byourside_server.store.records import CallRecord, call_from_row

PAGE_SIZE = 25
MAX_SEARCH = 100


@dataclass(frozen=True)
class CallFilter:
    """What the calls page was asked for, already checked (bad values are dropped, never an error page)."""

    status: CallStatus | None = None
    since: date | None = None  # first day shown (UTC)
    until: date | None = None  # last day shown (UTC), inclusive
    search: str = ""
    account: str = ""  # operators: the account's name

    @classmethod
    def from_query(cls, params: dict[str, str]) -> CallFilter:
        status = params.get("status", "")
        search = " ".join(params.get("q", "").split())[:MAX_SEARCH]
        return cls(
            status=CallStatus(status) if status in {s.value for s in CallStatus} else None,
            since=_day(params.get("since", "")),
            until=_day(params.get("until", "")),
            search="".join(ch for ch in search if ch.isprintable()),
            account=params.get("account", "")[:100],
        )

    def query(self, **extra: str) -> str:
        """This filter as a query string (with ``extra`` such as a cursor)."""
        values = {
            "status": self.status.value if self.status else "",
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "q": self.search,
            "account": self.account,
            **extra,
        }
        return urlencode({k: v for k, v in values.items() if v})

    @property
    def narrowed(self) -> bool:
        return bool(self.status or self.since or self.until or self.search)


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
    except ValueError:
        return None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def find_calls(db: Database, account_id: str, wanted: CallFilter, cursor: str | None = None,
                     limit: int = PAGE_SIZE) -> tuple[list[CallRecord], str | None]:
    """A page of the account's calls matching ``wanted``, and the cursor of the next page.
    A cursor this server did not issue shows the first page."""
    c = t.calls.c
    query = select(t.calls).where(c.account_id == account_id)
    if wanted.status is not None:
        query = query.where(c.status == wanted.status.value)
    if wanted.since is not None:
        query = query.where(c.created_at >= datetime.combine(wanted.since, time.min, timezone.utc))
    if wanted.until is not None:
        query = query.where(c.created_at < datetime.combine(wanted.until + timedelta(days=1), time.min, timezone.utc))
    if wanted.search:
        words = [c.objective.ilike(_like(wanted.search), escape="\\"),
                 c.summary.ilike(_like(wanted.search), escape="\\"),
                 c.id == wanted.search]
        digits = re.sub(r"\D", "", wanted.search)
        if len(digits) >= 3 and re.fullmatch(r"[\d\s()+.-]+", wanted.search):
            words.append(c.to_number.like(_like(digits), escape="\\"))
        query = query.where(or_(*words))
    if cursor:
        try:
            when, last_id = decode_cursor(cursor)
        except InvalidRequest:
            when = None
        if when is not None:
            query = query.where(or_(c.created_at < when, and_(c.created_at == when, c.id < last_id)))
    query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
    async with db.read() as conn:
        rows = (await conn.execute(query)).mappings().all()
    calls = [call_from_row(r) for r in rows[:limit]]
    return calls, encode_cursor(calls[-1]) if len(rows) > limit else None
