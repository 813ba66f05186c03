"""Who is signed in to the dashboard, and the checks every form goes through.

- **Session**: a random token in the ``bys_session`` cookie (HttpOnly, SameSite=Lax, Path
  /dashboard, Secure when ``BYS_PUBLIC_BASE_URL`` is https); the store keeps only its hash,
  so signing out, or out everywhere, takes effect at once in every process.
- **CSRF**: every form carries a token that is an HMAC of the session token (or, before
  sign-in, of a random ``bys_presession`` cookie) under a key derived from the server's
  signing secret: a session-bound signed double-submit. Another site can neither read
  the cookie nor compute the token, and a token from one session is useless in another.
- **Rate limit**: failed sign-ins are counted per email and per client address.
- An agent API key (``Authorization: Bearer``) is never looked at here: only the cookie signs in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request
from fastapi.responses import Response

from byourside_server.dashboard.users import DashboardUser, UserRepo, token_hash
from byourside_server.services import Services

SESSION_COOKIE = "bys_session"
PRESESSION_COOKIE = "bys_presession"
COOKIE_PATH = "/dashboard"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class DashboardContext:
    """What the dashboard's routes share; built once by ``mount_dashboard``."""

    services: Services
    users: UserRepo
    csrf_key: bytes

    @property
    def secure_cookies(self) -> bool:
        return self.services.settings.effective_public_base_url.startswith("https://")

    @property
    def session_ttl(self) -> timedelta:
        return timedelta(hours=self.services.settings.dashboard_session_hours)


def context_of(request: Request) -> DashboardContext:
    return request.app.state.dashboard


def csrf_key_from(signing_secret: bytes) -> bytes:
    return hmac.new(signing_secret, b"byourside dashboard csrf", hashlib.sha256).digest()


def csrf_token_for(ctx: DashboardContext, bound_to: str) -> str:
    return hmac.new(ctx.csrf_key, token_hash(bound_to).encode(), hashlib.sha256).hexdigest()


async def current_user(request: Request) -> DashboardUser | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 100:
        return None
    return await context_of(request).users.session_user(token)


def csrf_binding(request: Request) -> str | None:
    """What this browser's CSRF token is bound to: its session, else its pre-session cookie."""
    return request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRESESSION_COOKIE)


def csrf_valid(request: Request, submitted: object) -> bool:
    bound_to = csrf_binding(request)
    if not bound_to or not isinstance(submitted, str) or len(submitted) != 64:
        return False
    return hmac.compare_digest(csrf_token_for(context_of(request), bound_to), submitted)


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=context_of(request).secure_cookies)


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax",
                           secure=context_of(request).secure_cookies)


def client_address(request: Request) -> str:
    """The peer address (put the dashboard behind a proxy that connects from one address per client,
    or rate limits by address become per proxy)."""
    return request.client.host if request.client else "unknown"


def rate_subjects(request: Request, email: str) -> tuple[str, str]:
    return "email:" + token_hash(email.strip().lower()), "ip:" + client_address(request)[:90]


async def sign_in_blocked(request: Request, email: str) -> bool:
    ctx = context_of(request)
    settings = ctx.services.settings
    by_email, by_ip = rate_subjects(request, email)
    counts = await ctx.users.recent_failures([by_email, by_ip], timedelta(seconds=settings.dashboard_sign_in_window_seconds))
    return (counts.get(by_email, 0) >= settings.dashboard_sign_in_failures_per_email
            or counts.get(by_ip, 0) >= settings.dashboard_sign_in_failures_per_ip)


async def note_failed_sign_in(request: Request, email: str) -> None:
    ctx = context_of(request)
    await ctx.users.record_failure(list(rate_subjects(request, email)),
                                   timedelta(seconds=ctx.services.settings.dashboard_sign_in_window_seconds))


def new_presession_value() -> str:
    return secrets.token_urlsafe(32)
