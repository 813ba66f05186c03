"""The store side of retention and erasure (compliance/retention.py): finding what has outlived
an account's retention, clearing it, erasing one call's personal data, and rewriting the
queued and sent webhook bodies of those calls.

Every write is conditional on what it found, so workers purging at the same moment, or a
purge meeting a DELETE, never undo each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from byourside_server.domain import TERMINAL_STATUSES
from byourside_server.store import schema as t

_ENDED = [s.value for s in TERMINAL_STATUSES]
# What a transcript purge clears: the words and what retells or quotes them.
TRANSCRIPT_COLUMNS = ("turns", "summary", "evidence")


def mask_number(e164: str) -> str:
    """``+15555550123`` -> ``+1555***0123``: enough to tell numbers apart, not to dial one."""
    if len(e164) >= 10:
        return f"{e164[:5]}***{e164[-4:]}"
    return f"{e164[:3]}***{e164[-2:]}"


async def expired_recordings(conn: AsyncConnection, account_id: str, cutoff: datetime,
                             limit: int) -> list[tuple[str, str]]:
    """(call id, recording reference) of the account's calls that ended before ``cutoff`` with a recording."""
    c = t.calls.c
    rows = await conn.execute(
        select(c.id, c.recording_path)
        .where(and_(c.account_id == account_id, c.ended_at < cutoff, c.recording_path.is_not(None)))
        .limit(limit))
    return [(r.id, r.recording_path) for r in rows]


async def clear_recording_in(conn: AsyncConnection, call_id: str, reference: str) -> bool:
    c = t.calls.c
    result = await conn.execute(
        update(t.calls).where(and_(c.id == call_id, c.recording_path == reference)).values(recording_path=None))
    return result.rowcount > 0


async def purge_transcripts_in(conn: AsyncConnection, account_id: str, cutoff: datetime, limit: int) -> list[str]:
    """Clear the transcript, summary and evidence of up to ``limit`` of the account's calls that ended
    before ``cutoff``; their ids. (Cleared columns hold SQL NULL, so a call is never found again.)"""
    c = t.calls.c
    ids = list((await conn.execute(
        select(c.id)
        .where(and_(c.account_id == account_id, c.ended_at < cutoff, c.status.in_(_ENDED),
                    or_(*(c[name].is_not(None) for name in TRANSCRIPT_COLUMNS))))
        .limit(limit))).scalars())
    if ids:
        await conn.execute(update(t.calls).where(c.id.in_(ids)).values(**{name: null() for name in TRANSCRIPT_COLUMNS}))
    return ids


async def erase_call_in(conn: AsyncConnection, call_id: str, now: datetime) -> Mapping[str, Any] | None:
    """Erase an ended call's personal data (see compliance/retention.py for what goes); the row as it
    now stands, or None when the call is not ended. A call already erased is returned unchanged."""
    c = t.calls.c
    row = (await conn.execute(select(t.calls).where(c.id == call_id).with_for_update())).mappings().first()
    if row is None or row["status"] not in _ENDED:
        return None
    if row["erased_at"] is not None:
        return row
    values: dict[str, Any] = {
        "to_number": mask_number(row["to_number"]),
        "from_number": mask_number(row["from_number"]),
        "objective": "",
        "context": None,
        "summary": null(),
        "extracted": {f["name"]: None for f in row["fields"] or []},
        "turns": null(),
        "evidence": null(),
        "recording_path": None,
        "voicemail_message": None,
        "answered_by_evidence": null(),
        "erased_at": now,
    }
    transfer = row.get("transfer")
    if isinstance(transfer, dict) and transfer.get("to"):  # the people the call could be handed to
        values["transfer"] = {**transfer, "to": [mask_number(str(n)) for n in transfer["to"]]}
    return (await conn.execute(update(t.calls).where(c.id == call_id).values(**values).returning(*t.calls.c))
            ).mappings().one()


async def rewrite_payloads_in(conn: AsyncConnection, call_ids: Sequence[str], rewrite: Callable[[str], str]) -> int:
    """Apply ``rewrite`` to the stored body of every call event (``call.*``) of these calls, queued or sent:
    a retry sends the body as it is stored at that moment. Returns how many bodies changed."""
    if not call_ids:
        return 0
    d = t.webhook_deliveries.c
    rows = (await conn.execute(
        select(d.id, d.payload).where(and_(d.call_id.in_(list(call_ids)), d.event.like("call.%"))))).all()
    changed = 0
    for row in rows:
        payload = rewrite(row.payload)
        if payload != row.payload:
            await conn.execute(update(t.webhook_deliveries).where(d.id == row.id).values(payload=payload))
            changed += 1
    return changed
