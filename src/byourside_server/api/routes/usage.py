"""``GET /v1/agent/usage`` (ext): the account's calls and minutes by day and final status over a
period, and this month's minute cap: used, reserved by calls not yet ended, and what is left.

Read from the running totals the store keeps as calls end (store/usage.py), so the answer costs
a few rows whatever the account's history. Days are UTC and count a call on the day it was placed.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request

from byourside_server.api.common import authenticate, services_of
from byourside_server.api.openapi import ERROR_RESPONSES
from byourside_server.errors import InvalidRequest
from byourside_server.store.usage import UsageReport, day_key, month_key

router = APIRouter(tags=["usage"], responses=ERROR_RESPONSES)

MAX_DAYS = 366
_DAY_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "description": description,
     "schema": {"type": "string", "format": "date"}}
    for name, description in (
        ("from", "First day, YYYY-MM-DD (UTC; default: the first day of this month)"),
        ("to", "Last day, inclusive, YYYY-MM-DD (UTC; default: today); at most 366 days after 'from'"),
    )
]


def _day(raw: str | None, name: str, default: date) -> date:
    if raw is None:
        return default
    try:
        if len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be a date as YYYY-MM-DD, e.g. 2026-12-01.") from None


def _minutes(seconds: int) -> float:
    return round(seconds / 60, 2)


def usage_json(report: UsageReport, first: date, last: date, today: date) -> dict[str, Any]:
    by_day: dict[str, dict[str, Any]] = {}
    for i in range((last - first).days + 1):
        key = day_key(first + timedelta(days=i))
        by_day[key] = {"date": key, "calls": 0, "seconds": 0, "byStatus": {}}
    totals: dict[str, Any] = {"calls": 0, "seconds": 0, "byStatus": {}}
    for row in report.days:
        for bucket in (by_day[row.day], totals):
            bucket["calls"] += row.calls
            bucket["seconds"] += row.seconds
            status = bucket["byStatus"].setdefault(row.status, {"calls": 0, "seconds": 0})
            status["calls"] += row.calls
            status["seconds"] += row.seconds
    for bucket in [*by_day.values(), totals]:
        bucket["minutes"] = _minutes(bucket["seconds"])
        for status in bucket["byStatus"].values():
            status["minutes"] = _minutes(status["seconds"])
    cap_seconds = report.monthly_minutes * 60
    return {
        "from": day_key(first),
        "to": day_key(last),
        "totals": totals,
        "days": list(by_day.values()),
        "month": {
            "month": month_key(today),
            "capMinutes": report.monthly_minutes,
            "usedMinutes": _minutes(report.month_seconds),
            "reservedMinutes": _minutes(report.reserved_seconds),
            "remainingMinutes": _minutes(max(0, cap_seconds - report.month_seconds - report.reserved_seconds)),
            "activeCalls": report.active_calls,
        },
    }


@router.get("/v1/agent/usage", openapi_extra={"parameters": _DAY_PARAMETERS})
async def get_usage(request: Request) -> dict[str, Any]:
    account, _ = await authenticate(request)
    services = services_of(request)
    now = services.clock.now()
    today = now.date()
    query = request.query_params
    first = _day(query.get("from"), "from", today.replace(day=1))
    last = _day(query.get("to"), "to", today)
    if last < first:
        raise InvalidRequest("'to' must not be before 'from'.")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidRequest(f"A usage period covers at most {MAX_DAYS} days; ask for a shorter one.")
    assert services.usage is not None
    report = await services.usage.report(account.id, first, last, now)
    return usage_json(report, first, last, today)
