"""Usage and limits: minutes this month against the account's cap, calls per day by final
status (the last 30 days, a chart), calls running now against the concurrency limit; an
operator edits the limits here, as ``byourside accounts limits`` does.

The figures are the store's running totals (store/usage.py), the same ones the minute cap
checks when a call is placed, so this page and the cap never disagree.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from byourside_server.dashboard import auth, charts
from byourside_server.dashboard.calls import visible_accounts
from byourside_server.dashboard.routes import not_found, page, redirect, signed_in_form
from byourside_server.dashboard.users import DashboardUser
from byourside_server.guardrails.text import parse_ascii_int

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/dashboard/usage", include_in_schema=False)

CHART_DAYS = 30
LIMITS = (  # (form and column name, label, highest value accepted)
    ("calls_per_minute", "Calls placed per minute", 100_000),
    ("max_concurrent_calls", "Calls at once", 100_000),
    ("monthly_minutes", "Minutes per month", 100_000_000),
)


async def _usage_page(request: Request, user: DashboardUser, account_name: str, http_status: int = 200,
                      **values: object) -> Response:
    services = auth.context_of(request).services
    accounts = await visible_accounts(request, user)
    account = next((a for a in accounts if a.name == account_name), None) or next(
        a for a in accounts if a.id == user.account_id)
    now = services.clock.now()
    today = now.date()
    report = await services.usage.report(account.id, today - timedelta(days=CHART_DAYS - 1), today, now)
    used_minutes = report.month_seconds / 60
    cap = account.monthly_minutes
    return page(request, "usage.html", http_status, user=user, title="Usage", account=account, accounts=accounts,
                month=now.strftime("%B %Y"), used_minutes=used_minutes, reserved_minutes=report.reserved_seconds / 60,
                used_share=min(100.0, 100 * used_minutes / cap) if cap else 100.0,
                active_calls=report.active_calls, limits=LIMITS,
                chart=charts.calls_per_day_chart(report.days, today, CHART_DAYS), **values)


@router.get("")
async def usage_page(request: Request) -> Response:
    user = await auth.current_user(request)
    if user is None:
        return redirect("/dashboard/sign-in")
    return await _usage_page(request, user, request.query_params.get("account", "")[:100])


@router.post("/limits")
async def edit_limits(request: Request) -> Response:
    """Operators only: new limits for the account named in the form."""
    checked = await signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    if not user.is_operator:
        return not_found(request, user)
    name = form.get("account", "")[:100]
    account = next((a for a in await visible_accounts(request, user) if a.name == name), None)
    if account is None:
        return not_found(request, user)
    changes: dict[str, int] = {}
    for key, label, highest in LIMITS:
        value = parse_ascii_int(form.get(key, "").strip(), max_digits=9)
        if value is None or not 0 <= value <= highest:
            return await _usage_page(request, user, name, 400,
                                     error=f"{label}: enter a whole number from 0 to {highest:,}.")
        changes[key] = value
    await auth.context_of(request).services.accounts.set_limits(account.id, **changes)
    log.info("dashboard_limits_set", account_id=account.id, user_id=user.id, **changes)
    return await _usage_page(request, user, name, notice=f"Limits of {account.name} saved.")
