"""Do-not-call: the account's suppression list (list with masked numbers, add one, remove one
after a confirmation, import a CSV file with a report of its rejected rows); an operator
chooses the account, as on the Usage page.

The same store, number rules and CSV reader as ``/v1/agent/suppressions`` and ``byourside
suppressions``, so a number added here is refused at placement (``403 destination_suppressed``)
and a bad number or row gets the API's token and message.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from byourside_server.api.requests import MAX_BODY_BYTES
from byourside_server.api.routes.suppressions import MAX_NOTE
from byourside_server.compliance.numbers_csv import read_numbers_csv
from byourside_server.dashboard import auth
from byourside_server.dashboard.calls import visible_accounts
from byourside_server.dashboard.routes import not_found, page, redirect, signed_in_form
from byourside_server.dashboard.users import DashboardUser
from byourside_server.dashboard.views import mask_number, when
from byourside_server.errors import InvalidNumber, InvalidRequest
from byourside_server.guardrails.numbers import parse_e164
from byourside_server.guardrails.text import printable_ascii
from byourside_server.store.suppressions import Suppression, SuppressionRepo

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/dashboard/suppressions", include_in_schema=False)

PAGE_SIZE = 100
_MULTIPART_OVERHEAD = 16 * 1024  # the form's other fields and part headers around the file
SOURCE_LABELS = {
    "api": "added by hand (API or dashboard)",
    "cli": "added by hand (CLI)",
    "csv": "imported from a CSV file",
    "opt_out": "opt-out spoken on a call",
}


@dataclass(frozen=True)
class EntryView:
    number: str
    masked: str
    source: str
    source_label: str
    call_id: str | None
    note: str
    added: str


def entry_view(entry: Suppression) -> EntryView:
    return EntryView(entry.number, mask_number(entry.number), entry.source,
                     SOURCE_LABELS.get(entry.source, entry.source), entry.call_id, entry.note or "",
                     when(entry.created_at))


def _repo(request: Request) -> SuppressionRepo:
    repo = auth.context_of(request).services.suppressions
    assert repo is not None
    return repo


async def _account(request: Request, user: DashboardUser, name: str, *, strict: bool):
    """The account this page is about: the user's own, or for an operator the one named.
    With ``strict`` (a form that changes the list) a name no visible account has is None."""
    accounts = await visible_accounts(request, user)
    named = next((a for a in accounts if a.name == name), None) if user.is_operator else None
    if named is None and strict and user.is_operator and name:
        return None, accounts
    return named or next(a for a in accounts if a.id == user.account_id), accounts


async def _list_page(request: Request, user: DashboardUser, account_name: str, http_status: int = 200,
                     cursor: str | None = None, **values: object) -> Response:
    account, accounts = await _account(request, user, account_name, strict=False)
    repo = _repo(request)
    try:
        items, next_cursor = await repo.list(account.id, limit=PAGE_SIZE, cursor=cursor)
    except InvalidRequest:  # a cursor this server did not issue: start from the first page
        items, next_cursor = await repo.list(account.id, limit=PAGE_SIZE)
    return page(request, "suppressions.html", http_status, user=user, title="Do-not-call", account=account,
                accounts=accounts, entries=[entry_view(i) for i in items], next_cursor=next_cursor,
                paged=bool(cursor), total=await repo.count(account.id), max_note=MAX_NOTE,
                max_file_kib=MAX_BODY_BYTES // 1024, **values)


@router.get("")
async def suppressions_page(request: Request) -> Response:
    user = await auth.current_user(request)
    if user is None:
        return redirect("/dashboard/sign-in")
    cursor = request.query_params.get("cursor", "")
    return await _list_page(request, user, request.query_params.get("account", "")[:100],
                            cursor=cursor[:40] if printable_ascii(cursor, 40) else None)


async def _form_account(request: Request):
    """A signed-in, CSRF-checked form and the account it acts on: (user, form, account name, account),
    or the response to send instead (sign-in, expired form, 404 for an account the user may not see)."""
    checked = await signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    name = form.get("account", "")[:100]
    account, _ = await _account(request, user, name, strict=True)
    if account is None:
        return not_found(request, user)
    return user, form, name, account


@router.post("")
async def add_number(request: Request) -> Response:
    checked = await _form_account(request)
    if isinstance(checked, Response):
        return checked
    user, form, name, account = checked
    note = form.get("note", "").strip()
    if len(note) > MAX_NOTE:
        return await _list_page(request, user, name, 400,
                                error=f"invalid_request: The reason must be at most {MAX_NOTE} characters.")
    try:
        number = parse_e164(form.get("number", "").strip()[:32])
    except InvalidNumber as exc:
        return await _list_page(request, user, name, 400, error=f"{exc.token}: {exc.message}")
    added = await _repo(request).add(account.id, [number], source="api", note=note or None)
    log.info("dashboard_suppression_added", account_id=account.id, user_id=user.id, added=added)
    notice = f"{number} added to the do-not-call list." if added else f"{number} was already on the list."
    return await _list_page(request, user, name, notice=notice)


@router.post("/remove")
async def remove_number(request: Request) -> Response:
    """Without ``confirm=yes`` this shows the confirmation; with it, the number leaves the list."""
    checked = await _form_account(request)
    if isinstance(checked, Response):
        return checked
    user, form, name, account = checked
    try:
        number = parse_e164(form.get("number", "")[:32])
    except InvalidNumber:
        return not_found(request, user)
    entry = await _repo(request).get(account.id, number)
    if entry is None:
        return not_found(request, user)
    if form.get("confirm") != "yes":
        return page(request, "remove_suppression.html", user=user, title="Remove from do-not-call",
                    account=account, entry=entry_view(entry), account_name=name)
    await _repo(request).remove(account.id, number)
    log.info("dashboard_suppression_removed", account_id=account.id, user_id=user.id)
    return await _list_page(request, user, name, notice=f"{number} removed from the do-not-call list; "
                                                        "it can be called again.")


async def _limited_form(request: Request):
    """The multipart form (one file at most), or None when its body is larger than the API
    accepts for a CSV import or is not a form."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES + _MULTIPART_OVERHEAD:
            return None
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    try:
        return await Request(request.scope, replay).form(max_files=1, max_fields=10)
    except (HTTPException, MultiPartException):
        return None


@router.post("/import")
async def import_csv(request: Request) -> Response:
    """A CSV file of numbers (multipart): good rows are added (``source: csv``), bad rows reported."""
    user = await auth.current_user(request)
    if user is None:
        return redirect("/dashboard/sign-in")
    form = await _limited_form(request)
    token = form.get(auth.CSRF_FIELD) if form is not None else None
    if form is not None and not auth.csrf_valid(request, token):
        form = None
    if form is None:
        return page(request, "error.html", 403, user=user, title="Form expired",
                    message="This form could not be verified (its security token is missing or stale, or the "
                            f"file is larger than {MAX_BODY_BYTES // 1024} KiB). Go back, reload the page and try "
                            "again.")
    name = form.get("account", "")
    name = name[:100] if isinstance(name, str) else ""
    account, _ = await _account(request, user, name, strict=True)
    if account is None:
        return not_found(request, user)
    upload = form.get("file")
    raw = await upload.read(MAX_BODY_BYTES + 1) if isinstance(upload, UploadFile) else b""
    if not raw:
        return await _list_page(request, user, name, 400, error="invalid_request: Choose a CSV file to import.")
    if len(raw) > MAX_BODY_BYTES:
        return await _list_page(request, user, name, 400,
                                error=f"invalid_request: The file is larger than {MAX_BODY_BYTES // 1024} KiB.")
    try:
        numbers, rejected = read_numbers_csv(raw)
    except InvalidRequest as exc:
        return await _list_page(request, user, name, 400, error=f"{exc.token}: {exc.message}")
    added = await _repo(request).add(account.id, numbers, source="csv") if numbers else 0
    log.info("dashboard_suppressions_imported", account_id=account.id, user_id=user.id, added=added,
             rejected=len(rejected))
    report = {"added": added, "already_listed": len(set(numbers)) - added, "rejected": rejected}
    return await _list_page(request, user, name, http_status=200, import_report=report)
