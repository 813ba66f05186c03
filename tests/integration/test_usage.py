"""Usage as running totals (store/usage.py) and ``GET /v1/agent/usage``, on both stores.

The totals must equal what summing the calls table gives, move in the transaction that ends a
call (and roll back with it), and be what the minute cap reads.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from byourside_server.domain import CallStatus, EndReason
from byourside_server.store import schema as t
from byourside_server.store.accounts import AccountRepo
from byourside_server.store.call_types import CallOutcome
from byourside_server.store.calls import CallRepo
from support import auth, new_account

CALL = {"to": "+14155550123", "objective": "Ask for the opening hours."}


async def place(api, secret: str) -> str:  # noqa: ANN001
    response = await api.post("/v1/agent/calls", json=CALL, headers=auth(secret))
    assert response.status_code == 201, response.text
    return response.json()["callId"]


async def end(calls: CallRepo, status: CallStatus, reason: EndReason, seconds: int | None) -> str:
    """Claim the oldest queued call and end it with ``status`` after ``seconds`` answered."""
    call = await calls.claim_next("w1", 30)
    assert call is not None
    assert await calls.mark_dialing(call.id, "w1")
    if seconds is not None:
        assert await calls.mark_in_progress(call.id, "w1")
    assert await calls.finish(call.id, "w1", CallOutcome(status, reason, duration_seconds=seconds))
    return call.id


async def rows(services, table):  # noqa: ANN001
    async with services.db.read() as conn:
        return [dict(r) for r in (await conn.execute(select(table))).mappings().all()]


async def test_totals_equal_the_sum_of_ended_calls_per_month_day_and_status(services, api):
    account, secret = await new_account(services)
    await services.accounts.set_limits(account.id, calls_per_minute=100, max_concurrent_calls=100)
    for _ in range(6):
        await place(api, secret)
    await end(services.calls, CallStatus.COMPLETED, EndReason.OBJECTIVE_MET, 61)
    await end(services.calls, CallStatus.COMPLETED, EndReason.OBJECTIVE_MET, 30)
    await end(services.calls, CallStatus.VOICEMAIL, EndReason.VOICEMAIL, 12)
    await end(services.calls, CallStatus.NO_ANSWER, EndReason.NO_ANSWER, None)
    canceled = await place(api, secret)
    assert (await api.post(f"/v1/agent/calls/{canceled}/cancel", headers=auth(secret))).status_code == 200
    # two calls stay queued: not counted until they end

    c = t.calls.c
    async with services.db.read() as conn:
        summed = (await conn.execute(
            select(c.status, func.count(), func.coalesce(func.sum(c.duration_seconds), 0))
            .where(c.account_id == account.id, c.status.not_in(["queued", "dialing", "in_progress"]))
            .group_by(c.status))).all()
    expected = {status: (n, int(s)) for status, n, s in summed}
    assert expected == {"completed": (2, 91), "voicemail": (1, 12), "no_answer": (1, 0), "failed": (1, 0)}

    today = services.clock.now()
    days = await rows(services, t.usage_days)
    assert {r["status"]: (r["calls"], r["seconds"]) for r in days} == expected
    assert {r["day"] for r in days} == {today.strftime("%Y-%m-%d")}
    months = await rows(services, t.usage_months)
    assert months == [{"account_id": account.id, "month": today.strftime("%Y-%m"), "calls": 5, "seconds": 103}]


async def test_an_end_whose_transaction_rolls_back_counts_nothing(services, api):
    account, secret = await new_account(services)
    await place(api, secret)

    async def failing_hook(conn, call, status, now):  # noqa: ANN001, ANN202
        if status.terminal:
            raise RuntimeError("the outbox write failed")

    calls = CallRepo(services.db, services.clock, on_transition=failing_hook)
    with pytest.raises(RuntimeError):
        await end(calls, CallStatus.COMPLETED, EndReason.OBJECTIVE_MET, 40)
    assert await rows(services, t.usage_months) == []
    assert await rows(services, t.usage_days) == []
    [call] = (await services.calls.list(account.id, limit=5))[0]
    assert call.status is CallStatus.IN_PROGRESS  # the status change rolled back with the totals


async def test_the_minute_cap_counts_ended_calls_from_the_running_total(services, api):
    account, secret = await new_account(services)
    await services.accounts.set_limits(account.id, monthly_minutes=2, max_concurrent_calls=10)
    await place(api, secret)
    await end(services.calls, CallStatus.COMPLETED, EndReason.OBJECTIVE_MET, 90)
    # 30 s left: the next call is cut to them
    left = await place(api, secret)
    assert (await services.calls.get(account.id, left)).max_duration_seconds == 30
    await end(services.calls, CallStatus.COMPLETED, EndReason.OBJECTIVE_MET, 30)
    refused = await api.post("/v1/agent/calls", json=CALL, headers=auth(secret))
    assert refused.status_code == 429 and refused.json()["error"] == "over_minute_cap"
    assert len((await services.calls.list(account.id, limit=10))[0]) == 2  # nothing created


async def test_usage_endpoint_shows_days_statuses_and_the_months_cap(services, api):
    account, secret = await new_account(services)
    await services.accounts.set_limits(account.id, monthly_minutes=40, max_concurrent_calls=10)
    for _ in range(3):
        await place(api, secret)
    await end(services.calls, CallStatus.COMPLETED, EndReason.OBJECTIVE_MET, 90)
    await end(services.calls, CallStatus.NO_ANSWER, EndReason.NO_ANSWER, None)
    # one call queued: its maximum duration (600 s by default) is reserved
    today = services.clock.now().date()
    response = await api.get("/v1/agent/usage", headers=auth(secret))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["from"] == today.replace(day=1).isoformat() and body["to"] == today.isoformat()
    assert len(body["days"]) == today.day
    assert body["totals"] == {"calls": 2, "seconds": 90, "minutes": 1.5, "byStatus": {
        "completed": {"calls": 1, "seconds": 90, "minutes": 1.5}, "no_answer": {"calls": 1, "seconds": 0, "minutes": 0.0}}}
    assert body["days"][-1]["date"] == today.isoformat() and body["days"][-1]["calls"] == 2
    month = body["month"]
    assert month["capMinutes"] == 40 and month["usedMinutes"] == 1.5 and month["activeCalls"] == 1
    assert month["reservedMinutes"] == 10.0 and month["remainingMinutes"] == 28.5

    one_day = await api.get(f"/v1/agent/usage?from={today}&to={today}", headers=auth(secret))
    assert [d["date"] for d in one_day.json()["days"]] == [today.isoformat()]
    other, other_secret = await new_account(services, caller_id="+14155550111")
    assert (await api.get("/v1/agent/usage", headers=auth(other_secret))).json()["totals"]["calls"] == 0


@pytest.mark.parametrize("query", ["from=2026-13-01", "from=yesterday", "to=2026-1-1", "from=2026-12-02&to=2026-12-01",
                                   "from=2024-01-01&to=2026-01-01", "from=%EF%BF%BF"])
async def test_usage_endpoint_refuses_a_bad_period_with_invalid_request(services, api, query):
    _, secret = await new_account(services)
    response = await api.get(f"/v1/agent/usage?{query}", headers=auth(secret))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert "YYYY-MM-DD" in response.json()["message"] or "'to'" in response.json()["message"] \
        or "366" in response.json()["message"]


async def test_usage_endpoint_needs_a_key(api):
    response = await api.get("/v1/agent/usage")
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"


async def test_a_key_revoked_by_another_process_places_no_call_even_while_cached(services, api):
    account, secret = await new_account(services)
    assert (await api.get("/v1/agent/calls", headers=auth(secret))).status_code == 200  # verified and cached
    elsewhere = AccountRepo(services.db, services.clock)  # the CLI's repo, in another process
    assert await elsewhere.revoke_key(account.id, secret)
    refused = await api.post("/v1/agent/calls", json=CALL, headers=auth(secret))
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert (await services.calls.list(account.id, limit=5))[0] == []
    services.accounts.forget_verified_keys()  # what the cache period does within BYS_API_KEY_CACHE_SECONDS
    assert (await api.get("/v1/agent/calls", headers=auth(secret))).status_code == 401


async def test_a_caller_id_removed_meanwhile_is_refused_in_the_creating_transaction(services, api):
    account, secret = await new_account(services)
    async with services.db.write() as conn:
        await conn.execute(t.phone_numbers.delete().where(t.phone_numbers.c.account_id == account.id))
    refused = await api.post("/v1/agent/calls", json=CALL, headers=auth(secret))
    assert refused.status_code == 403 and refused.json()["error"] == "caller_id_not_owned"
    assert (await services.calls.list(account.id, limit=5))[0] == []


def test_usage_days_are_utc_dates():
    from byourside_server.store.usage import day_key, month_key

    assert day_key(date(2026, 2, 3)) == "2026-02-03"
    from datetime import datetime, timezone

    assert month_key(datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc)) == "2026-12"


async def test_the_cli_prints_days_statuses_and_the_months_cap(services, api):
    from byourside_server.cli.client import usage_lines

    account, secret = await new_account(services)
    await services.accounts.set_limits(account.id, monthly_minutes=100)
    await place(api, secret)
    await end(services.calls, CallStatus.COMPLETED, EndReason.OBJECTIVE_MET, 150)
    usage = (await api.get("/v1/agent/usage", headers=auth(secret))).json()
    lines = usage_lines(usage)
    today = services.clock.now().date().isoformat()
    assert lines[0].startswith(f"Usage from {usage['from']} to {today}")
    assert any(line.strip().startswith(today) and "1 calls" in line and "2.50 min" in line and "completed 1" in line
               for line in lines)
    assert lines[-1] == f"Month {usage['month']['month']}: cap 100 min, used 2.50, reserved by 0 unfinished call(s) 0.00, left 97.50"
