"""Account - Developers: the account's API keys (create, shown once; revoke after a
confirmation), caller IDs (set the default), and the webhook signing secret (reveal; rotate,
the old secret signing on for BYS_WEBHOOK_SECRET_GRACE_SECONDS) with a "send test event"
button. The same repos and functions as the CLI and the API, so a key revoked here is
refused by the API at once and a test event is checked and signed exactly as the API's."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from byourside_server.api.requests import MAX_URL
from byourside_server.dashboard import auth
from byourside_server.dashboard.routes import not_found, page, redirect, signed_in_form
from byourside_server.dashboard.users import DashboardUser
from byourside_server.errors import InvalidNumber, InvalidWebhookUrl
from byourside_server.guardrails.numbers import check_caller_id_format
from byourside_server.store.accounts import NumberTaken
from byourside_server.telephony.caller_ids import CallerIdsUnavailable, carrier_caller_ids
from byourside_server.guardrails.webhook_urls import system_resolver
from byourside_server.webhooks.store import WebhookRepo
from byourside_server.webhooks.test_event import send_test_event

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/dashboard/developers", include_in_schema=False)


def _webhooks(request: Request) -> WebhookRepo:
    services = auth.context_of(request).services
    return WebhookRepo(services.db, services.clock, secret_grace_seconds=services.settings.webhook_secret_grace_seconds)


async def _developers_page(request: Request, user: DashboardUser, http_status: int = 200, **values: object) -> Response:
    services = auth.context_of(request).services
    accounts = services.accounts
    account = await accounts.get(user.account_id)
    signing = await _webhooks(request).secrets(account.id)
    return page(request, "developers.html", http_status, user=user, title="Developers", account=account,
                keys=await accounts.list_keys(account.id), numbers=await accounts.list_numbers(account.id),
                secret_masked=signing[0][:6] + "•" * 12 + signing[0][-4:], old_secret_signing=len(signing) > 1,
                grace_hours=services.settings.webhook_secret_grace_seconds / 3600, **values)


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


@router.post("/caller-ids")
async def add_caller_id(request: Request) -> Response:
    """Add a caller ID the configured carrier confirms (any number on the simulator), as
    ``byourside numbers add`` does; a number belongs to one account only."""
    checked = await signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    settings = auth.context_of(request).services.settings
    try:
        number = check_caller_id_format(form.get("number", "").strip()[:32])
        owned = await carrier_caller_ids(settings)
    except InvalidNumber as exc:
        return await _developers_page(request, user, 400, error=exc.message)
    except CallerIdsUnavailable as exc:
        return await _developers_page(request, user, 503, error=str(exc))
    if owned is not None and number not in owned:
        return await _developers_page(request, user, 400, error=(
            f"{number} is not a caller ID your carrier ({settings.telephony}) lets this server present. Add it "
            "with the carrier first (a Twilio number or verified caller ID; for a SIP trunk, BYS_SIP_CALLER_IDS), "
            "then try again."))
    make_default = form.get("make_default") == "yes"
    try:
        await auth.context_of(request).services.accounts.add_number(user.account_id, number, make_default=make_default)
    except NumberTaken:
        return await _developers_page(request, user, 409, error=(
            f"{number} is another account's caller ID; a number belongs to one account only."))
    log.info("dashboard_caller_id_added", account_id=user.account_id)
    return await _developers_page(request, user, notice=f"Caller ID {number} added.")


# Webhook signing secret and test events


@router.post("/webhook-secret/reveal")
async def reveal_webhook_secret(request: Request) -> Response:
    checked = await signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    user, _ = checked
    secret = (await _webhooks(request).secrets(user.account_id))[0]
    log.info("dashboard_webhook_secret_revealed", account_id=user.account_id)
    return await _developers_page(request, user, revealed_secret=secret)


@router.post("/webhook-secret/rotate")
async def rotate_webhook_secret(request: Request) -> Response:
    """Without ``confirm=yes`` this shows the confirmation; with it, a new secret is made and shown."""
    checked = await signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    if form.get("confirm") != "yes":
        grace = auth.context_of(request).services.settings.webhook_secret_grace_seconds / 3600
        return page(request, "rotate_secret.html", user=user, title="Rotate webhook secret", grace_hours=grace)
    secret = await _webhooks(request).rotate_secret(user.account_id)
    log.info("dashboard_webhook_secret_rotated", account_id=user.account_id)
    return await _developers_page(request, user, revealed_secret=secret,
                                  notice="New webhook secret made. Update your receivers; the old one keeps signing "
                                         "for the overlap period.")


@router.post("/webhook-test")
async def send_test(request: Request) -> Response:
    checked = await signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    url = form.get("url", "").strip()
    if not url or len(url) > MAX_URL:
        return await _developers_page(request, user, 400, test_url=url[:MAX_URL],
                                      test_error=f"Enter an https:// URL of 1-{MAX_URL} characters.")
    services = auth.context_of(request).services
    resolver = getattr(request.app.state, "webhook_resolver", system_resolver)
    try:
        sent = await send_test_event(services, user.account_id, url, resolver)
    except InvalidWebhookUrl as exc:
        return await _developers_page(request, user, 400, test_url=url, test_error=exc.message)
    attempt = sent["attempt"]
    log.info("dashboard_webhook_test", account_id=user.account_id, outcome=attempt["outcome"],
             http_status=attempt["httpStatus"])
    return await _developers_page(request, user, test_url=url, test_result=sent)
