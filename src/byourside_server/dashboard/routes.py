"""The dashboard's pages under /dashboard: sign-in and sign-out, the account page (calls are in
calls.py, Developers in developers.py), and what every page shares: rendering, forms, redirects.

Every page is rendered server-side by Jinja2 with autoescaping; every POST checks the
CSRF token before anything else. Pages a signed-out browser asks for redirect to the
sign-in page; a call of another account is a 404, the same as a call that does not exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from byourside_server.dashboard import auth
from byourside_server.dashboard.passwords import (
    WeakPassword, check_password_rules, hash_password, spend_like_a_check, verify_password,
)
from byourside_server.dashboard.users import DashboardUser
from byourside_server.guardrails.text import printable_ascii

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/dashboard", include_in_schema=False)

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_MAX_FORM_BYTES = 16 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "media-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # sign-in links carry their token in the URL
    "Cache-Control": "no-store",
}


def render(request: Request, template: str, binding: str, *, user: DashboardUser | None = None, **values: Any) -> str:
    """A template as HTML, its forms carrying the CSRF token bound to ``binding``."""
    return _templates.get_template(template).render(
        user=user, csrf_token=auth.csrf_token_for(auth.context_of(request), binding), **values)


def page(request: Request, template: str, http_status: int = 200, *, user: DashboardUser | None = None,
         **values: Any) -> HTMLResponse:
    binding = auth.csrf_binding(request)
    new_presession = None
    if binding is None:
        binding = new_presession = auth.new_presession_value()
    html = render(request, template, binding, user=user, **values)
    response = HTMLResponse(html, status_code=http_status, headers=SECURITY_HEADERS)
    if new_presession:
        auth.set_cookie(request, response, auth.PRESESSION_COOKIE, new_presession, max_age=3600)
    return response


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})


def not_found(request: Request, user: DashboardUser | None) -> HTMLResponse:
    return page(request, "error.html", 404, user=user, title="Not found",
                message="There is no such page, or it belongs to another account.")


async def read_form(request: Request) -> dict[str, str] | None:
    """The urlencoded form (first value of each name), or None when too large or not text."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            return None
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None
    return {name: values[0] for name, values in parsed.items()}


async def checked_form(request: Request, user: DashboardUser | None = None) -> dict[str, str] | HTMLResponse:
    form = await read_form(request)
    if form is None or not auth.csrf_valid(request, form.get(auth.CSRF_FIELD)):
        return page(request, "error.html", 403, user=user, title="Form expired",
                    message="This form could not be verified (its security token is missing or stale). "
                            "Go back, reload the page and try again.")
    return form


async def signed_in_form(request: Request) -> tuple[DashboardUser, dict[str, str]] | Response:
    """The signed-in user and their CSRF-checked form, or the response that refuses the post
    (sign-in redirect, or the "form expired" page)."""
    user = await auth.current_user(request)
    if user is None:
        return redirect("/dashboard/sign-in")
    form = await checked_form(request, user)
    if isinstance(form, HTMLResponse):
        return form
    return user, form


# Signing in and out


@router.get("")
async def home(request: Request) -> Response:
    return redirect("/dashboard/calls" if await auth.current_user(request) else "/dashboard/sign-in")


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    return page(request, "sign_in.html", title="Sign in")


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await checked_form(request)
    if isinstance(form, HTMLResponse):
        return form
    email, password = form.get("email", "")[:254], form.get("password", "")
    if await auth.sign_in_blocked(request, email):
        return page(request, "sign_in.html", 429, title="Sign in", email=email,
                    error="Too many failed sign-ins. Wait a few minutes and try again.")
    ctx = auth.context_of(request)
    found = await ctx.users.by_email(email) if email else None
    stored_hash = found[1] if found else None
    if stored_hash is None:  # no such user, or no password yet: the same work and answer as a wrong one
        spend_like_a_check(password)
    if found is None or not verify_password(password, stored_hash):
        await auth.note_failed_sign_in(request, email)
        log.info("dashboard_sign_in_failed")
        return page(request, "sign_in.html", 401, title="Sign in", email=email,
                    error="That email and password do not match.")
    return await _start_session(request, found[0], "/dashboard/calls")


async def _start_session(request: Request, user: DashboardUser, then: str) -> Response:
    ctx = auth.context_of(request)
    token = await ctx.users.start_session(user.id, ctx.session_ttl)
    log.info("dashboard_signed_in", user_id=user.id, account_id=user.account_id)
    response = redirect(then)
    auth.set_cookie(request, response, auth.SESSION_COOKIE, token, max_age=int(ctx.session_ttl.total_seconds()))
    return response


def dashboard_path(value: str, default: str) -> str:
    """``value`` when it is a path of this dashboard (where a sign-in link may lead), else ``default``:
    never another site, so a link cannot send anyone elsewhere."""
    if (printable_ascii(value, 300) and value.startswith("/dashboard/") and "//" not in value
            and "\\" not in value and ".." not in value):
        return value
    return default


@router.get("/sign-in/link")
async def link_page(request: Request, token: str = "", next: str = "") -> Response:
    """Shows a button; only its POST uses the link, so a mail scanner fetching the URL does not."""
    return page(request, "link.html", title="Sign in", token=token, next=dashboard_path(next, ""))


@router.post("/sign-in/link")
async def use_link(request: Request) -> Response:
    form = await checked_form(request)
    if isinstance(form, HTMLResponse):
        return form
    token = form.get("token", "")
    user = await auth.context_of(request).users.consume_link(token) if printable_ascii(token, 100) else None
    if user is None:
        return page(request, "error.html", 400, title="Link not valid",
                    message="This sign-in link has expired or was already used. Ask for a new one "
                            "(byourside users link --email ...).")
    return await _start_session(request, user, dashboard_path(form.get("next", ""), "/dashboard/account"))


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    form = await checked_form(request)
    if isinstance(form, HTMLResponse):
        return form
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token:
        await auth.context_of(request).users.end_session(token)
    response = redirect("/dashboard/sign-in")
    auth.clear_session_cookie(request, response)
    return response


@router.post("/sign-out-everywhere")
async def sign_out_everywhere(request: Request) -> Response:
    checked = await signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    await auth.context_of(request).users.end_all_sessions(user.id)
    response = redirect("/dashboard/sign-in")
    auth.clear_session_cookie(request, response)
    return response


# The account page: set a password


@router.get("/account")
async def account_page(request: Request) -> Response:
    user = await auth.current_user(request)
    if user is None:
        return redirect("/dashboard/sign-in")
    account = await auth.context_of(request).services.accounts.get(user.account_id)
    return page(request, "account.html", user=user, account=account, title="Account")


@router.post("/account/password")
async def set_password(request: Request) -> Response:
    checked = await signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    user, form = checked
    ctx = auth.context_of(request)
    account = await ctx.services.accounts.get(user.account_id)
    new, confirm = form.get("new_password", ""), form.get("confirm_password", "")
    error = None
    if user.has_password and not verify_password(form.get("current_password", ""), await ctx.users.password_hash(user.id)):
        error = "The current password is not right."
    elif new != confirm:
        error = "The two new passwords differ."
    else:
        try:
            check_password_rules(new)
        except WeakPassword as exc:
            error = str(exc)
    if error:
        return page(request, "account.html", 400, user=user, account=account, title="Account", error=error)
    await ctx.users.set_password_hash(user.id, hash_password(new))
    return page(request, "account.html", user=user, account=account, title="Account", notice="Password saved.")
