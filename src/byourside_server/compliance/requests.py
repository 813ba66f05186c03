"""The request keys of responsible calling (ext): ``scheduledAt`` and ``callingHours``
(``retry`` is read in compliance/retry.py). Each problem is ``invalid_request``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from byourside_server.errors import InvalidRequest

# RFC 3339 date-time: a full date, "T" (or "t", or a space), a time, and an offset (Z or ±HH:MM).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
MAX_SCHEDULE_AHEAD = timedelta(days=90)
CALLING_HOURS_MODES = ("hold", "strict")


def parse_scheduled_at(value: Any) -> datetime | None:
    """An RFC 3339 timestamp with its offset, as UTC. A moment already past means "now"; more
    than 90 days ahead is refused (checked at placement against the server's clock)."""
    if value is None:
        return None
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise InvalidRequest("'scheduledAt' must be an RFC 3339 timestamp with its offset, e.g. 2026-12-01T09:30:00Z "
                             "or 2026-12-01T09:30:00-08:00.")
    text = value.replace("t", "T").replace(" ", "T").replace("z", "Z")
    # Python reads at most 6 fractional digits: extra precision below a microsecond is dropped.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest("'scheduledAt' is not a real date and time (check the day, hour and offset).") from None
    return when.astimezone(timezone.utc)


def check_schedule_horizon(scheduled_at: datetime | None, now: datetime) -> None:
    if scheduled_at is not None and scheduled_at - now > MAX_SCHEDULE_AHEAD:
        raise InvalidRequest("'scheduledAt' may be at most 90 days ahead.")


def parse_calling_hours_mode(value: Any) -> str:
    if value is None:
        return "hold"
    if value not in CALLING_HOURS_MODES:
        raise InvalidRequest("'callingHours' must be \"hold\" (wait until the callee's calling hours open; the default) "
                             "or \"strict\" (refuse the call outside them).")
    return value
