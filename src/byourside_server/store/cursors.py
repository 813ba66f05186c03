"""Cursors of ``GET /v1/agent/calls``: the (created_at, id) of the last call of a page,
opaque to clients, and refused unless this server could have issued it."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from byourside_server.errors import InvalidRequest
from byourside_server.guardrails.text import possible_id
from byourside_server.store.records import CallRecord

MAX_CURSOR_CHARS = 200  # ours are about 80


def encode_cursor(call: CallRecord) -> str:
    raw = f"{call.created_at.isoformat()}|{call.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at in UTC, call id) of a cursor; ``invalid_request`` for anything this server
    cannot have issued, including dates that overflow in UTC and ids that cannot exist."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
            raise ValueError
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        stamp, call_id = raw.split("|", 1)
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None or not possible_id(call_id):
            raise ValueError
        return when.astimezone(timezone.utc), call_id
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise InvalidRequest("'cursor' is not a cursor this server issued; pass nextCursor back unchanged.") from exc
