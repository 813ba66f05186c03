"""Account - Developers: the account's API keys (create, shown once; revoke after a
confirmation) and caller IDs (set the default). The same repos as the CLI and the API,
so a key revoked here is refused by the API at once."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from byourside_server.dashboard import auth
from byourside_server.dashboard.routes import not_found, page, redirect, signed_in_form
from byourside_server.dashboard.users import DashboardUser

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/dashboard/developers", include_in_schema=False)


async def _developers_page(request: Request, user: DashboardUser, http_status: int = 200, **values: object) -> Response:
    accounts = auth.context_of(request).services.accounts
    account = await accounts.get(user.account_id)
    return page(request, "developers.html", http_status, user=user, title="Developers", account=account,
                keys=await accounts.list_keys(account.id), numbers=await accounts.list_numbers(account.id), **values)


@router.get("")
async def developers(request: Request) -> Response:
    user = await auth.current_user(request)
    if user is None:
        return redirect("/dashboard/sign-in")
    return await _developers_page(request, user)


@router.post("/keys")
async def create_key(request: Request) -> Response:
    checked = await signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    name = form.get("name", "").strip()[:100] or None
    record, secret = await auth.context_of(request).services.accounts.create_key(user.account_id, name=name)
    log.info("dashboard_key_created", key_id=record.id, account_id=user.account_id)
    return await _developers_page(request, user, new_key=secret, new_key_display=record.display)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    """Without ``confirm=yes`` this shows the confirmation; with it, the key is revoked."""
    checked = await signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    accounts = auth.context_of(request).services.accounts
    key = next((k for k in await accounts.list_keys(user.account_id) if k.id == key_id), None)
    if key is None:
        return not_found(request, user)
    if form.get("confirm") != "yes":
        return page(request, "revoke_key.html", user=user, title="Revoke key", key=key)
    await accounts.revoke_key(user.account_id, key.id)
    log.info("dashboard_key_revoked", key_id=key.id, account_id=user.account_id)
    return await _developers_page(request, user, notice=f"Key {key.display} revoked.")


@router.post("/default-caller-id")
async def set_default_caller_id(request: Request) -> Response:
    checked = await signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    if not await auth.context_of(request).services.accounts.set_default_number(user.account_id, form.get("number", "")):
        return await _developers_page(request, user, 400, error="That number is not one of the account's caller IDs.")
    return await _developers_page(request, user, notice="Default caller ID set.")
