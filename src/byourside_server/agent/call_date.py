"""The call's date where the callee is.

A callee who says "tomorrow" means the day after their own today: at 8 pm in
Los Angeles that is two days after the UTC date's previous day. The zone comes
from the number called (``phonenumbers``' time-zone data, by prefix); a number
it cannot place is read in UTC. A prefix that spans several zones takes the
first one the data lists, which can differ from the callee's only in the hour
around midnight.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones


def local_date(e164: str, at: datetime | None = None) -> date:
    """The date at ``at`` (default: now) in the time zone of the number ``e164``."""
    moment = at or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        names: tuple[str, ...] = tuple(number_zones.time_zones_for_number(phonenumbers.parse(e164)))
    except phonenumbers.NumberParseException:
        names = ()
    for name in names:
        try:
            return moment.astimezone(ZoneInfo(name)).date()
        except (ZoneInfoNotFoundError, ValueError):
            continue  # "Etc/Unknown" for a number the data does not place
    return moment.astimezone(timezone.utc).date()
