"""Calls: the list (filters, search, live) and a call's page (live while it runs, its recording).

Both pages update themselves over server-sent events: ``.../live`` streams the page's
changing part, rendered by the same templates as the page, whenever it differs from what
the browser last got (dashboard.js swaps it in; no reload, no polling from the browser).
The stream reads the store, so it sees calls run by workers in any process.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Awaitable, Callable

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from byourside_server.api.routes.recordings import recording_response
from byourside_server.dashboard import auth, charts, views
from byourside_server.dashboard.call_query import CallFilter, find_calls
from byourside_server.dashboard.routes import SECURITY_HEADERS, not_found, page, redirect, render, signed_in_form
from byourside_server.dashboard.users import DashboardUser
from byourside_server.errors import NotFound, StoreUnavailable
from byourside_server.store.records import CallRecord
from byourside_server.webhooks.store import WebhookRepo

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/dashboard/calls", include_in_schema=False)

KEEP_ALIVE_SECONDS = 15.0  # a comment line now and then keeps proxies from closing a quiet stream


async def visible_accounts(request: Request, user: DashboardUser) -> list:
    accounts = auth.context_of(request).services.accounts
    return await accounts.list() if user.is_operator else [await accounts.get(user.account_id)]


async def visible_call(request: Request, user: DashboardUser, call_id: str) -> CallRecord | None:
    """The call if this user may see it: their account's, or any for an operator."""
    calls = auth.context_of(request).services.calls
    if user.is_operator:
        return await calls.get_any(call_id)
    try:
        return await calls.get(user.account_id, call_id)
    except NotFound:
        return None


async def _list_values(request: Request, user: DashboardUser) -> dict[str, Any]:
    wanted = CallFilter.from_query(dict(request.query_params))
    accounts = await visible_accounts(request, user)
    chosen = next((a for a in accounts if a.name == wanted.account), None) or next(
        a for a in accounts if a.id == user.account_id)
    services = auth.context_of(request).services
    calls, next_cursor = await find_calls(services.db, chosen.id, wanted, request.query_params.get("cursor") or None)
    return {
        "rows": [views.call_row(c) for c in calls], "filter": wanted, "statuses": views.STATUS_FILTERS,
        "accounts": accounts, "account": chosen,
        "older": f"/dashboard/calls?{wanted.query(cursor=next_cursor)}" if next_cursor else None,
        "live_url": f"/dashboard/calls/live?{request.url.query}",
    }


@router.get("")
async def calls_page(request: Request) -> Response:
    user = await auth.current_user(request)
    if user is None:
        return redirect("/dashboard/sign-in")
    return page(request, "calls.html", user=user, title="Calls", **await _list_values(request, user))


@router.get("/live")
async def calls_live(request: Request) -> Response:
    async def table(user: DashboardUser, binding: str) -> str:
        return render(request, "_calls_table.html", binding, user=user, **await _list_values(request, user))

    return await _event_stream(request, table)


async def _call_values(request: Request, call: CallRecord) -> dict[str, Any]:
    services = auth.context_of(request).services
    webhooks = WebhookRepo(services.db, services.clock,
                           secret_grace_seconds=services.settings.webhook_secret_grace_seconds)
    base_url = services.settings.effective_public_base_url
    return {
        "call": call, "row": views.call_row(call), "duration": views.duration(call.duration_seconds),
        "deliveries": await webhooks.list_for_call(call.account_id, call.id),
        "timeline": views.timeline(call, await services.calls.events(call.id)),
        "turns": views.transcript(call), "fields": views.fields(call),
        "latency": charts.latency_chart(call.latency),
        "raw_json": views.raw_json(call, base_url), "curl": views.curl_command(call, base_url),
    }


@router.get("/{call_id}")
async def call_page(request: Request, call_id: str) -> Response:
    user = await auth.current_user(request)
    if user is None:
        return redirect("/dashboard/sign-in")
    call = await visible_call(request, user, call_id)
    if call is None:
        return not_found(request, user)
    return page(request, "call.html", user=user, title="Call", **await _call_values(request, call))


@router.get("/{call_id}/live")
async def call_live(request: Request, call_id: str) -> Response:
    async def body(user: DashboardUser, binding: str) -> str | None:
        call = await visible_call(request, user, call_id)
        if call is None:
            return None
        return render(request, "_call_live.html", binding, user=user, **await _call_values(request, call))

    return await _event_stream(request, body)


@router.get("/{call_id}/recording")
async def call_recording(request: Request, call_id: str) -> Response:
    """The recording through the dashboard session (the API's signed link is not needed here)."""
    user = await auth.current_user(request)
    call = await visible_call(request, user, call_id) if user else None
    services = auth.context_of(request).services
    response = await recording_response(services, call.recording_path if call else None,
                                        headers={"Cache-Control": "private, no-store"})
    return response or Response("Not found", status_code=404, media_type="text/plain")


@router.get("/{call_id}/waveform.svg")
async def call_waveform(request: Request, call_id: str) -> Response:
    """The recording's two channels (callee, agent) drawn as an SVG, computed from the stored WAV."""
    user = await auth.current_user(request)
    call = await visible_call(request, user, call_id) if user else None
    services = auth.context_of(request).services
    if call is None or not call.recording_path or services.recordings is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    svg = await charts.recording_waveform(services.recordings, call.recording_path)
    if svg is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600",
                                                              "X-Content-Type-Options": "nosniff"})


@router.post("/{call_id}/webhooks/{delivery_id}/deliver-again")
async def deliver_again(request: Request, call_id: str, delivery_id: str) -> Response:
    """Queue one more attempt of a finished webhook delivery; the delivery loop makes it within
    BYS_WEBHOOK_POLL_SECONDS and the call page shows its result live."""
    checked = await signed_in_form(request)
    if isinstance(checked, Response):
        return checked
    user, _ = checked
    call = await visible_call(request, user, call_id)
    if call is None:
        return not_found(request, user)
    services = auth.context_of(request).services
    webhooks = WebhookRepo(services.db, services.clock,
                           secret_grace_seconds=services.settings.webhook_secret_grace_seconds)
    if not any(d["eventId"] == delivery_id for d in await webhooks.list_for_call(call.account_id, call.id)):
        return not_found(request, user)
    queued = await webhooks.deliver_again(call.account_id, delivery_id)
    log.info("dashboard_webhook_deliver_again", call_id=call.id, delivery_id=delivery_id, queued=queued)
    return redirect(f"/dashboard/calls/{call.id}#deliveries-card")


# Server-sent events


def _event(name: str, html: str = "") -> str:
    data = "".join(f"data: {line}\n" for line in (html.splitlines() or [""]))
    return f"event: {name}\n{data}\n"


async def _event_stream(request: Request, render_now: Callable[[DashboardUser, str], Awaitable[str | None]]) -> Response:
    """Stream ``update`` events with what ``render_now`` returns whenever it changes.

    Ends with ``signed-out`` when the session ends and ``gone`` when there is nothing to show;
    also ends after ``BYS_DASHBOARD_LIVE_STREAM_SECONDS`` (the browser reconnects by itself)
    and when the server shuts down, so an open tab never holds a shutdown up.
    """
    settings = auth.context_of(request).services.settings
    tick = settings.dashboard_live_seconds
    shutting_down: Callable[[], bool] = getattr(request.app.state, "shutting_down", lambda: False)

    async def events() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        ends_at = time.monotonic() + settings.dashboard_live_stream_seconds
        last_html, last_sent = None, time.monotonic()
        while True:
            try:
                user = await auth.current_user(request)
                if user is None:
                    yield _event("signed-out")
                    return
                html = await render_now(user, request.cookies.get(auth.SESSION_COOKIE, ""))
                if html is None:
                    yield _event("gone")
                    return
            except StoreUnavailable:  # the store is back soon or the stream ends; the page keeps what it has
                html = last_html
            if html != last_html:
                yield _event("update", html)
                last_html, last_sent = html, time.monotonic()
            elif time.monotonic() - last_sent >= KEEP_ALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            if time.monotonic() >= ends_at or shutting_down() or await request.is_disconnected():
                return
            await asyncio.sleep(tick)

    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
