"""Calling hours: when a callee may be called, in the callee's local time.

An account's window (default 08:00-21:00, every day; ``BYS_CALLING_HOURS_*``) applies in
the time zone of the number called. The zones come from the ``phonenumbers`` package's
time-zone data (``phonenumbers.timezone``), by number prefix; a prefix that spans several
zones (a mobile range, a toll-free number, a whole country) is open only when the window is
open in every one of them: the most restrictive reading. A number the data does not place
gets its country's zones; one with no country data at all is read in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")
# How far ahead a window is looked for: a week covers every choice of days.
_SEARCH_DAYS = 8


class CallingHoursError(ValueError):
    """A calling-hours setting that cannot be read (the message says which part and how to write it)."""


@dataclass(frozen=True)
class CallingHours:
    """A daily window ``[start_minute, end_minute)`` of local time on the given weekdays (0 = Monday)."""

    start_minute: int = 8 * 60
    end_minute: int = 21 * 60
    days: frozenset[int] = frozenset(range(7))

    def __post_init__(self) -> None:
        if not 0 <= self.start_minute < self.end_minute <= 24 * 60:
            raise CallingHoursError("calling hours must start before they end, within one day (e.g. 08:00-21:00)")
        if not self.days or not self.days <= frozenset(range(7)):
            raise CallingHoursError("calling hours need at least one day of the week")

    @classmethod
    def parse(cls, start: str, end: str, days: str | list[str] | tuple[str, ...]) -> "CallingHours":
        return cls(parse_clock(start, "start"), parse_clock(end, "end"), parse_days(days))

    def to_json(self) -> dict[str, object]:
        return {"start": format_clock(self.start_minute), "end": format_clock(self.end_minute),
                "days": [DAY_NAMES[d] for d in sorted(self.days)]}

    @property
    def days_text(self) -> str:
        return ",".join(DAY_NAMES[d] for d in sorted(self.days))

    def open_in(self, zone: ZoneInfo, at: datetime) -> bool:
        local = at.astimezone(zone)
        minute = local.hour * 60 + local.minute
        return local.weekday() in self.days and self.start_minute <= minute < self.end_minute

    def open_everywhere(self, zones: tuple[ZoneInfo, ...], at: datetime) -> bool:
        return all(self.open_in(zone, at) for zone in zones)

    def next_open(self, zones: tuple[ZoneInfo, ...], at: datetime) -> datetime | None:
        """``at`` if the window is open in every zone then, else the first moment it is; None if
        the zones' windows never overlap within a week (a number spread over too many zones)."""
        if self.open_everywhere(zones, at):
            return at
        # The overlap of the zones' windows, when there is one, begins where one of them opens.
        candidates = sorted(
            opening
            for zone in zones
            for offset in range(_SEARCH_DAYS)
            if (opening := _opening(zone, at.astimezone(zone).date() + timedelta(days=offset), self)) is not None
            and opening > at
        )
        return next((c for c in candidates if self.open_everywhere(zones, c)), None)


def _opening(zone: ZoneInfo, day: date, hours: CallingHours) -> datetime | None:
    if day.weekday() not in hours.days:
        return None
    start = datetime.combine(day, time(hours.start_minute // 60, hours.start_minute % 60), tzinfo=zone)
    # A window opening inside a daylight-saving gap opens at the first minute that exists.
    return start.astimezone(timezone.utc)


def parse_clock(text: str, what: str) -> int:
    if not isinstance(text, str) or not _CLOCK.fullmatch(text.strip()):
        raise CallingHoursError(f"calling hours '{what}' must be a 24-hour time HH:MM, e.g. 08:00")
    hours, minutes = text.strip().split(":")
    return int(hours) * 60 + int(minutes)


def format_clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_days(days: str | list[str] | tuple[str, ...]) -> frozenset[int]:
    """``"mon-fri,sun"``, ``"mon,tue"`` or a list of day names (``mon`` or ``monday``, any case)."""
    parts = days.split(",") if isinstance(days, str) else list(days)
    chosen: set[int] = set()
    for part in parts:
        if not isinstance(part, str):
            raise CallingHoursError("calling-hours days must be day names such as mon, tue ... sun")
        if not part.strip():
            continue
        first, _, last = part.partition("-")
        a = _day(first)
        b = _day(last) if last else a
        chosen.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    if not chosen:
        raise CallingHoursError("calling hours need at least one day of the week")
    return frozenset(chosen)


_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _day(token: str) -> int:
    word = token.strip().lower()
    for index, (short, full) in enumerate(zip(DAY_NAMES, _FULL_DAY_NAMES)):
        if word in (short, full):
            return index
    raise CallingHoursError(f"'{token.strip()}' is not a day: use mon, tue, wed, thu, fri, sat, sun or a range mon-fri")


@lru_cache(maxsize=4096)
def zones_for_number(e164: str) -> tuple[ZoneInfo, ...]:
    """The time zones a number may ring in (see the module note); never empty."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return (ZoneInfo("UTC"),)
    names = number_zones.time_zones_for_number(number)
    if not names or names == (number_zones.UNKNOWN_TIMEZONE,):
        names = number_zones.TIMEZONE_DATA.get(str(number.country_code), ())
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue  # a name this system's time-zone database does not know
    return tuple(zones) or (ZoneInfo("UTC"),)
