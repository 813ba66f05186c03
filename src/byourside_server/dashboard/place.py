"""Place a call from the browser: the form (destination, objective, context, fields row by row,
voice, language, webhook URL, caller ID), then the call's live page.

The form becomes the same JSON body a client would post, and goes through the same code as
``POST /v1/agent/calls``: ``validate_call_request`` (the API's validation and messages), then
``place_call`` (guardrails, caller-ID ownership, limits, one store transaction), with an
``Idempotency-Key`` minted when the form was shown, so pressing *Place call* twice (or
resubmitting after a reload) places one call. In the sandbox (the phone simulator) the form
offers the simulator's numbers with what each one plays.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from byourside_server.api.requests import MAX_FIELDS, validate_call_request
from byourside_server.dashboard import auth
from byourside_server.dashboard.routes import page, redirect, signed_in_form
from byourside_server.dashboard.users import DashboardUser
from byourside_server.errors import ApiError
from byourside_server.placement import place_call, request_hash

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/dashboard/place", include_in_schema=False)

FIELD_TYPES = ("string", "boolean", "number")
SHOWN_FIELD_ROWS = 3  # empty rows shown without script; "Add a field" adds more (up to MAX_FIELDS)


@dataclass(frozen=True)
class SandboxNumber:
    number: str
    scenario: str
    description: str


def sandbox_numbers(settings: Any) -> list[SandboxNumber]:
    """The simulator's numbers and what each plays, when the simulator places the calls."""
    if settings.telephony != "simulator":
        return []
    from byourside_server.telephony.simulator.scenarios import ScenarioError, load_scenarios

    try:
        book = load_scenarios(settings.sim_scenarios_file)
    except ScenarioError:
        return []
    numbers = {f"+1415555{suffix}": name for suffix, name in book.suffixes.items()}
    numbers.update(book.exact)
    return [SandboxNumber(number, name, book.scenarios[name].description)
            for number, name in sorted(numbers.items()) if name in book.scenarios]


def form_body(form: dict[str, str]) -> dict[str, Any]:
    """The API request body the form stands for (blank inputs left out, as a client would)."""
    body: dict[str, Any] = {"to": form.get("to", "").strip(), "objective": form.get("objective", "")}
    for name, key in (("context", "context"), ("voice", "voice"), ("language", "language"),
                      ("webhook_url", "webhookUrl"), ("caller_id", "callerId")):
        value = form.get(name, "").strip()
        if value:
            body[key] = value
    fields = []
    for index in range(MAX_FIELDS + 1):  # one row beyond the limit reaches the API's invalid_fields
        name = form.get(f"field-{index}-name", "").strip()
        if not name:
            continue
        field: dict[str, Any] = {"name": name, "type": form.get(f"field-{index}-type", "string")}
        description = form.get(f"field-{index}-description", "").strip()
        if description:
            field["description"] = description
        fields.append(field)
    if fields:
        body["fields"] = fields
    return body


async def _form_page(request: Request, user: DashboardUser, http_status: int = 200, *,
                     form: dict[str, str] | None = None, error: ApiError | None = None) -> Response:
    services = auth.context_of(request).services
    account = await services.accounts.get(user.account_id)
    form = form or {}
    rows = max(SHOWN_FIELD_ROWS, 1 + max((i for i in range(MAX_FIELDS + 1) if form.get(f"field-{i}-name")),
                                         default=-1))
    return page(request, "place.html", http_status, user=user, title="Place a call", form=form,
                field_rows=range(rows), field_types=FIELD_TYPES, max_fields=MAX_FIELDS,
                numbers=await services.accounts.list_numbers(account.id), account=account,
                sandbox=sandbox_numbers(services.settings), error=error,
                idempotency_key=form.get("idempotency_key") or secrets.token_urlsafe(16))


@router.get("")
async def place_page(request: Request) -> Response:
    user = await auth.current_user(request)
    if user is None:
        return redirect("/dashboard/sign-in")
    return await _form_page(request, user, form={"to": request.query_params.get("to", "")[:32]})


@router.post("")
async def place(request: Request) -> Response:
    checked = await signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    services = auth.context_of(request).services
    body = form_body(form)
    idempotency_key = form.get("idempotency_key", "")[:255] or None
    try:
        call_request = validate_call_request(body)
        account = await services.accounts.get(user.account_id)
        # No API key: a signed-in user places it (the voice is the form's, else the platform default).
        created = await place_call(services, account, None, call_request,
                                   idempotency_key=idempotency_key,
                                   body_hash=request_hash(body) if idempotency_key else None)
    except ApiError as exc:
        return await _form_page(request, user, exc.http_status, form=form, error=exc)
    call_id = created.response["callId"]
    if not created.replayed:
        log.info("call_queued", call_id=call_id, account_id=user.account_id, via="dashboard")
    return redirect(f"/dashboard/calls/{call_id}")
