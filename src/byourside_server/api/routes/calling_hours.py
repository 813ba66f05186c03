"""``/v1/agent/calling-hours`` (ext): when the account's calls may ring, in the callee's local time.

``GET`` shows the hours in force (``source``: ``account``, or ``default`` from the
``BYS_CALLING_HOURS_*`` settings); ``PUT`` ``{"start": "09:00", "end": "20:00", "days": ["mon",
..., "fri"]}`` sets them; ``DELETE`` goes back to the defaults. See compliance/hours.py.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from byourside_server.api.common import authenticate, read_body, services_of
from byourside_server.api.openapi import ERROR_RESPONSES
from byourside_server.api.requests import parse_body
from byourside_server.compliance.hours import CallingHours, CallingHoursError
from byourside_server.compliance.service import Compliance
from byourside_server.errors import InvalidRequest

router = APIRouter(tags=["calling hours"], responses=ERROR_RESPONSES)


def _compliance(request: Request) -> Compliance:
    compliance = services_of(request).compliance
    assert compliance is not None
    return compliance


async def _shown(compliance: Compliance, account_id: str) -> dict[str, Any]:
    own = await compliance.repo.calling_hours(account_id)
    hours = own or compliance.default_hours
    return {**hours.to_json(), "source": "account" if own else "default"}


@router.get("/v1/agent/calling-hours")
async def get_calling_hours(request: Request) -> dict[str, Any]:
    account, _ = await authenticate(request)
    return await _shown(_compliance(request), account.id)


@router.put("/v1/agent/calling-hours")
async def put_calling_hours(request: Request) -> dict[str, Any]:
    account, _ = await authenticate(request)
    body = parse_body(await read_body(request))
    if set(body) - {"start", "end", "days"} or not {"start", "end"} <= set(body):
        raise InvalidRequest("Send {\"start\": \"08:00\", \"end\": \"21:00\", \"days\": [\"mon\", ..., \"sun\"]} "
                             "(days optional: every day).")
    days = body.get("days", "mon-sun")
    if not isinstance(days, (list, str)):
        raise InvalidRequest("'days' must be a list of day names such as [\"mon\", \"tue\"].")
    try:
        hours = CallingHours.parse(body["start"], body["end"], days)
    except CallingHoursError as exc:
        raise InvalidRequest(f"{exc}.") from None
    compliance = _compliance(request)
    await compliance.repo.set_calling_hours(account.id, hours)
    return await _shown(compliance, account.id)


@router.delete("/v1/agent/calling-hours")
async def reset_calling_hours(request: Request) -> dict[str, Any]:
    account, _ = await authenticate(request)
    compliance = _compliance(request)
    await compliance.repo.set_calling_hours(account.id, None)
    return await _shown(compliance, account.id)
