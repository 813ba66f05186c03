"""The dashboard's calls filters and search, its live streams (server-sent events), the call page's
latency chart, waveform and curl command, webhook "deliver again", the webhook secret (reveal,
rotate with overlap) and "send test event", and where a sign-in link may lead; over HTTP
in-process, on every store."""

from __future__ import annotations

import json
import re
import shlex
import struct
import wave
from datetime import timedelta
from html import unescape

import httpx
import pytest
from sqlalchemy import update
from support import conduct_call, new_account, open_services
from webhook_receiver import Receiver, always

from byourside_server.api.app import create_app
from byourside_server.dashboard.charts import channel_peaks
from byourside_server.dashboard.users import UserRepo
from byourside_server.runtime.registry import build_brain, build_telephony
from byourside_server.store import schema as t
from byourside_server.webhooks.sender import AttemptResult
from byourside_server.webhooks.store import WebhookRepo

CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
RESTAURANT = {"to": "+14155550123", "objective": "Ask if they have a table for two tonight and the tasting menu price",
              "fields": [{"name": "table_available", "type": "boolean"},
                         {"name": "tasting_menu_price", "type": "number"}]}


@pytest.fixture
async def dash(database_url, tmp_path):
    """Services whose live streams send the page's state once and end (the browser would reconnect)."""
    services = await open_services(database_url, tmp_path, dashboard_live_stream_seconds=0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                 base_url="http://testserver") as client:
        yield services, client
    await services.aclose()


def csrf(html: str) -> str:
    return CSRF_RE.search(html).group(1)


async def signed_in(services, client, account, email="u@example.com"):  # noqa: ANN001
    users = UserRepo(services.db, services.clock)
    user = await users.create(account.id, email)
    token = await users.issue_link(user.id, timedelta(minutes=5))
    page = await client.get(f"/dashboard/sign-in/link?token={token}")
    done = await client.post("/dashboard/sign-in/link", data={"token": token, "csrf_token": csrf(page.text)})
    assert done.status_code == 303
    return user


async def a_call(services, account, body=RESTAURANT):  # noqa: ANN001
    settings = services.settings
    return await conduct_call(services, account, build_telephony(settings, services.clock), build_brain(settings), body)


def events(stream_text: str) -> list[tuple[str, str]]:
    """(event name, data) of each server-sent event."""
    found = []
    for block in stream_text.split("\n\n"):
        lines = block.split("\n")
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        if name:
            found.append((name, "\n".join(line[6:] for line in lines if line.startswith("data: "))))
    return found


async def test_calls_filter_by_date_and_search(dash):
    services, client = dash
    account, _ = await new_account(services, "acme")
    table = await a_call(services, account)
    hours = await a_call(services, account, {"to": "+14155550125", "objective": "Ask for the opening hours on Saturday"})
    await signed_in(services, client, account)

    def listed(html: str) -> set[str]:
        return set(re.findall(r'data-call-id="([^"]+)"', html))

    assert listed((await client.get("/dashboard/calls")).text) == {table.id, hours.id}
    assert listed((await client.get("/dashboard/calls?q=TASTING+menu")).text) == {table.id}
    assert listed((await client.get("/dashboard/calls?q=0125")).text) == {hours.id}  # the destination's digits
    assert listed((await client.get(f"/dashboard/calls?q={hours.id}")).text) == {hours.id}
    assert listed((await client.get("/dashboard/calls?q=100%25")).text) == set()  # % is a character, not a wildcard
    today = table.created_at.date()
    assert listed((await client.get(f"/dashboard/calls?since={today}&until={today}")).text) == {table.id, hours.id}
    yesterday = today - timedelta(days=1)
    nothing = await client.get(f"/dashboard/calls?until={yesterday}")
    assert listed(nothing.text) == set() and "No calls match these filters." in nothing.text
    assert listed((await client.get(f"/dashboard/calls?since={today + timedelta(days=1)}")).text) == set()
    # Values that are not dates or statuses are ignored, never an error page
    odd = await client.get("/dashboard/calls?since=yesterday&until=2026-13-45&status=<b>&cursor=nonsense")
    assert odd.status_code == 200 and listed(odd.text) == {table.id, hours.id}
    masked = re.search(rf'data-call-id="{table.id}".*?<span class="masked">([^<]+)</span>', (await client.get(
        "/dashboard/calls")).text, re.S).group(1)
    assert masked == "+1415•••••23"


async def test_the_calls_list_and_a_call_stream_their_state(dash):
    services, client = dash
    account, _ = await new_account(services, "acme")
    other, _ = await new_account(services, "other", caller_id="+14155550101")
    call = await a_call(services, account)
    theirs = await a_call(services, other)

    signed_out = await client.get("/dashboard/calls/live")
    assert signed_out.headers["content-type"].startswith("text/event-stream")
    assert [name for name, _ in events(signed_out.text)] == ["signed-out"]

    await signed_in(services, client, account)
    listing = events((await client.get("/dashboard/calls/live?status=completed")).text)
    assert [name for name, _ in listing] == ["update"]
    assert f'data-call-id="{call.id}"' in listing[0][1] and theirs.id not in listing[0][1]
    page = events((await client.get(f"/dashboard/calls/{call.id}/live")).text)
    assert [name for name, _ in page] == ["update"]
    assert 'id="call-status">completed<' in page[0][1] and "eighty-five dollars" in page[0][1]
    assert [name for name, _ in events((await client.get(f"/dashboard/calls/{theirs.id}/live")).text)] == ["gone"]


async def test_the_call_page_draws_latency_and_the_waveform_and_offers_curl(dash, tmp_path):
    services, client = dash
    account, _ = await new_account(services, "acme")
    call = await a_call(services, account, {**RESTAURANT, "context": "It's for 'Bob' & \"Alice\" $(rm -rf /)",
                                            "metadata": {"order": "42"}})
    recording = tmp_path / "call.wav"
    with wave.open(str(recording), "wb") as out:  # callee loud, agent quiet
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(struct.pack("<hh", 20000, 1000) * 8000)
    latency = {"turns": [{"speechEndMs": 1000, "endpointingMs": 300, "sttMs": 200, "llmFirstTokenMs": 400,
                          "ttsFirstAudioMs": 100, "totalMs": 1000},
                         {"speechEndMs": 5000, "endpointingMs": 250, "sttMs": 150, "llmFirstTokenMs": 300,
                          "ttsFirstAudioMs": 100, "totalMs": 800}],
               "p50": {"totalMs": 800}, "p90": {"totalMs": 1000}}
    async with services.db.write() as conn:
        await conn.execute(update(t.calls).where(t.calls.c.id == call.id)
                           .values(recording_path=str(recording), latency=latency))
    await signed_in(services, client, account)
    page = (await client.get(f"/dashboard/calls/{call.id}")).text

    chart = re.search(r'<svg class="latency".*?</svg>', page, re.S).group(0)
    assert len(re.findall(r'<g data-turn="\d+">', chart)) == 2 and ">1000</text>" in chart and ">800</text>" in chart
    assert "median 800 ms, p90 1000 ms" in page
    assert len(re.findall(r'data-seek-ms="\d+"', page)) == len(call.turns)

    svg = await client.get(f"/dashboard/calls/{call.id}/waveform.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.count("<path") == 2
    lanes = channel_peaks(recording.read_bytes())
    assert len(lanes) == 2 and min(lanes[0]) > 0.6 and max(lanes[1]) < 0.04

    command = unescape(re.search(r'<pre id="curl">(.*?)</pre>', page, re.S).group(1))
    words = shlex.split(command)
    assert words[:4] == ["curl", "-s", "-X", "POST"] and words[4].endswith("/v1/agent/calls")
    body = json.loads(words[words.index("-d") + 1])
    assert body["objective"] == RESTAURANT["objective"] and body["fields"][1]["name"] == "tasting_menu_price"
    assert body["context"] == "It's for 'Bob' & \"Alice\" $(rm -rf /)" and body["metadata"] == {"order": "42"}
    assert "Bearer $BYS_API_KEY" in command and "bys_ak_" not in command

    other, _ = await new_account(services, "other", caller_id="+14155550101")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                 base_url="http://testserver") as stranger:
        await signed_in(services, stranger, other, "s@example.com")
        assert (await stranger.get(f"/dashboard/calls/{call.id}/waveform.svg")).status_code == 404


async def test_deliver_again_queues_one_more_attempt(dash):
    services, client = dash
    account, _ = await new_account(services, "acme")
    call = await a_call(services, account, {**RESTAURANT, "webhookUrl": "http://127.0.0.1:9/hook"})
    repo = WebhookRepo(services.db, services.clock)
    claimed = {c.event: c for c in await repo.claim_due("test-loop", 30, 10)}
    finished = claimed["call.completed"]
    await repo.record_attempt(finished, "test-loop", services.clock.now(),
                              AttemptResult("http_error", 500, None, 12), retry_in_seconds=None)
    await signed_in(services, client, account)
    page = (await client.get(f"/dashboard/calls/{call.id}")).text
    row = re.search(rf'<tr data-event-id="{finished.id}">.*?</tr>', page, re.S).group(0)
    assert "failed" in row and "deliver-again" in row
    pending = re.search(rf'<tr data-event-id="{claimed["call.in_progress"].id}">.*?</tr>', page, re.S).group(0)
    assert "deliver-again" not in pending  # still pending: its next attempt is already scheduled

    again = await client.post(f"/dashboard/calls/{call.id}/webhooks/{finished.id}/deliver-again",
                              data={"csrf_token": csrf(page)})
    assert again.status_code == 303
    (delivery,) = [d for d in await repo.list_for_call(account.id, call.id) if d["eventId"] == finished.id]
    assert delivery["status"] == "pending" and delivery["finishedAt"] is None
    assert [c.id for c in await repo.claim_due("test-loop-2", 30, 10)] == [finished.id]  # due now

    forged = await client.post(f"/dashboard/calls/{call.id}/webhooks/{finished.id}/deliver-again",
                               data={"csrf_token": "0" * 64})
    assert forged.status_code == 403
    unknown = await client.post(f"/dashboard/calls/{call.id}/webhooks/evt_nope/deliver-again",
                                data={"csrf_token": csrf(page)})
    assert unknown.status_code == 404


async def test_webhook_secret_reveal_rotate_and_test_event(dash):
    services, client = dash
    account, _ = await new_account(services, "acme")
    await signed_in(services, client, account)
    repo = WebhookRepo(services.db, services.clock, secret_grace_seconds=services.settings.webhook_secret_grace_seconds)
    (current,) = await repo.secrets(account.id)
    page = (await client.get("/dashboard/developers")).text
    assert current not in page and current[-4:] in page  # masked until revealed

    revealed = await client.post("/dashboard/developers/webhook-secret/reveal", data={"csrf_token": csrf(page)})
    assert f'<code id="webhook-secret">{current}</code>' in revealed.text

    asked = await client.post("/dashboard/developers/webhook-secret/rotate", data={"csrf_token": csrf(page)})
    assert "confirm-rotate" in asked.text and await repo.secrets(account.id) == [current]
    rotated = await client.post("/dashboard/developers/webhook-secret/rotate",
                                data={"csrf_token": csrf(page), "confirm": "yes"})
    new = re.search(r'<code id="webhook-secret">(whsec_[^<]+)</code>', rotated.text).group(1)
    assert new != current and await repo.secrets(account.id) == [new, current]  # the overlap
    assert "old-secret-note" in rotated.text

    with Receiver(always(200)) as receiver:
        sent = await client.post("/dashboard/developers/webhook-test", data={"csrf_token": csrf(page),
                                                                           "url": receiver.url()})
        assert sent.status_code == 200
        result = re.search(r'id="webhook-test-result">(.*?)</p>', sent.text, re.S).group(1)
        assert "Delivered" in result and "HTTP 200" in result
        (request,) = receiver.requests
        assert request.json["event"] == "ping" and request.headers["x-bys-signature"].count("v1=") == 2
    with Receiver(always(503)) as receiver:
        failed = await client.post("/dashboard/developers/webhook-test", data={"csrf_token": csrf(page),
                                                                             "url": receiver.url()})
        assert "Not delivered" in failed.text and "HTTP 503" in failed.text


async def test_a_test_event_to_a_refused_url_says_what_the_api_says(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'byourside.db'}"
    services = await open_services(url, tmp_path, webhook_allow_private=False, webhook_allow_http=False)
    try:
        account, key = await new_account(services)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                     base_url="http://testserver") as client:
            await signed_in(services, client, account)
            page = (await client.get("/dashboard/developers")).text
            for refused in ("https://127.0.0.1/hook", "http://8.8.8.8/hook"):
                api = await client.post("/v1/agent/webhooks/test", json={"url": refused},
                                        headers={"Authorization": f"Bearer {key}"})
                shown = await client.post("/dashboard/developers/webhook-test",
                                          data={"csrf_token": csrf(page), "url": refused})
                assert api.status_code == shown.status_code == 400
                message = re.search(r'id="webhook-test-error">(.*?)</p>', shown.text, re.S).group(1)
                assert unescape(message) == api.json()["message"]
    finally:
        await services.aclose()


async def test_a_sign_in_link_leads_only_to_dashboard_pages(dash):
    services, client = dash
    account, _ = await new_account(services, "acme")
    users = UserRepo(services.db, services.clock)
    user = await users.create(account.id, "n@example.com")
    for target, lands in (("/dashboard/calls?status=completed", "/dashboard/calls?status=completed"),
                          ("https://evil.example/", "/dashboard/account"),
                          ("//evil.example/dashboard/", "/dashboard/account"),
                          ("/dashboard/../v1/agent/calls", "/dashboard/account")):
        token = await users.issue_link(user.id, timedelta(minutes=5))
        page = await client.get("/dashboard/sign-in/link", params={"token": token, "next": target})
        done = await client.post("/dashboard/sign-in/link",
                                 data={"token": token, "next": target, "csrf_token": csrf(page.text)})
        assert done.status_code == 303 and done.headers["location"] == lands, target


async def test_place_a_call_from_the_browser_goes_through_the_api_rules(dash):
    services, client = dash
    account, key = await new_account(services, "acme")
    await signed_in(services, client, account)
    form_page = await client.get("/dashboard/place")
    assert form_page.status_code == 200
    assert re.search(r'<td class="number">\+14155550123</td><td><code>copper_pot</code>', form_page.text)
    token = csrf(form_page.text)
    idem = re.search(r'name="idempotency_key" value="([^"]+)"', form_page.text).group(1)
    bearer = {"Authorization": f"Bearer {key}"}

    async def both(form: dict, body: dict) -> tuple[httpx.Response, httpx.Response]:
        shown = await client.post("/dashboard/place", data={"csrf_token": token, **form})
        api = await client.post("/v1/agent/calls", json=body, headers=bearer)
        return shown, api

    for form, body in (
        ({"to": "+1 415 555 0123", "objective": "Ask"}, {"to": "+1 415 555 0123", "objective": "Ask"}),
        ({"to": "+14155550123", "objective": "  "}, {"to": "+14155550123", "objective": "  "}),
        ({"to": "+19001234567", "objective": "Ask"}, {"to": "+19001234567", "objective": "Ask"}),
        ({"to": "+14155550123", "objective": "Ask", "caller_id": "+14155550999"},
         {"to": "+14155550123", "objective": "Ask", "callerId": "+14155550999"}),
        ({"to": "+14155550123", "objective": "Ask", "field-0-name": "bad name!"},
         {"to": "+14155550123", "objective": "Ask", "fields": [{"name": "bad name!", "type": "string"}]}),
        ({"to": "+14155550123", "objective": "Ask", "webhook_url": "ftp://example.com/x"},
         {"to": "+14155550123", "objective": "Ask", "webhookUrl": "ftp://example.com/x"}),
    ):
        shown, api = await both(form, body)
        assert shown.status_code == api.status_code >= 400, (form, api.json())
        error = unescape(re.search(r'id="place-error"><code>([^<]+)</code>: (.*?)</p>', shown.text, re.S).group(2))
        assert error == api.json()["message"], form
        assert f'value="{form["to"]}"' in shown.text  # the form keeps what was typed
    assert (await services.calls.list(account.id, limit=10))[0] == []  # nothing was created

    form = {"csrf_token": token, "idempotency_key": idem, "to": "+14155550123", "objective": "Ask about a table",
            "field-0-name": "table_available", "field-0-type": "boolean", "field-0-description": "free tonight?",
            "field-1-name": "", "field-2-name": "tasting_menu_price", "field-2-type": "number"}
    placed = await client.post("/dashboard/place", data=form)
    assert placed.status_code == 303 and placed.headers["location"].startswith("/dashboard/calls/")
    again = await client.post("/dashboard/place", data=form)  # pressed twice: one call
    assert again.headers["location"] == placed.headers["location"]
    (call,), _ = await services.calls.list(account.id, limit=10)
    assert call.id == placed.headers["location"].rsplit("/", 1)[1] and call.status.value == "queued"
    assert [(f.name, f.type, f.description) for f in call.fields] == [
        ("table_available", "boolean", "free tonight?"), ("tasting_menu_price", "number", None)]
    assert call.from_number == "+14155550100"  # the account's default caller ID
    changed = await client.post("/dashboard/place", data={**form, "objective": "Something else"})
    assert changed.status_code == 409 and "idempotency_conflict" in changed.text


async def test_a_wrong_method_on_a_dashboard_page_names_the_allowed_ones(api):
    for method, path, allowed in (("POST", "/dashboard/calls", "GET"), ("GET", "/dashboard/sign-out", "POST"),
                                  ("DELETE", "/dashboard/place", "GET, POST"),
                                  ("PUT", "/dashboard/developers/webhook-test", "POST")):
        response = await api.request(method, path)
        assert response.status_code == 405 and response.headers["allow"] == allowed, (method, path)


async def test_usage_shows_the_month_against_the_cap_and_operators_edit_limits(dash):
    from byourside_server.dashboard.users import OPERATOR

    services, client = dash
    account, _ = await new_account(services, "acme")
    call = await a_call(services, account)
    await a_call(services, account, {"to": "+14155550125", "objective": "Ask for the opening hours on Saturday"})
    await signed_in(services, client, account)
    usage = (await client.get("/dashboard/usage")).text
    report = await services.usage.report(account.id, call.created_at.date(), call.created_at.date(),
                                         services.clock.now())
    assert f'<span id="minutes-used">{report.month_seconds / 60:.1f}</span>' in usage
    assert f'<span id="minutes-cap">{account.monthly_minutes}</span>' in usage
    assert f'<g data-day="{call.created_at.date().isoformat()}" data-calls="2">' in usage
    assert 'id="active-calls">0<' in usage and "limits-form" not in usage  # members only read the limits
    refused = await client.post("/dashboard/usage/limits", data={
        "csrf_token": csrf(usage), "account": "acme", "calls_per_minute": "1", "max_concurrent_calls": "1",
        "monthly_minutes": "1"})
    assert refused.status_code == 404 and (await services.accounts.get(account.id)).calls_per_minute != 1

    users = UserRepo(services.db, services.clock)
    operator = await users.create(account.id, "op@example.com", OPERATOR)
    other, _ = await new_account(services, "other", caller_id="+14155550101")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                 base_url="http://testserver") as ops:
        token = await users.issue_link(operator.id, timedelta(minutes=5))
        link = await ops.get(f"/dashboard/sign-in/link?token={token}")
        await ops.post("/dashboard/sign-in/link", data={"token": token, "csrf_token": csrf(link.text)})
        page = (await ops.get("/dashboard/usage?account=other")).text
        assert "Usage of other" in page and "limits-form" in page
        bad = await ops.post("/dashboard/usage/limits", data={
            "csrf_token": csrf(page), "account": "other", "calls_per_minute": "-3", "max_concurrent_calls": "2",
            "monthly_minutes": "90"})
        assert bad.status_code == 400 and "whole number" in bad.text
        saved = await ops.post("/dashboard/usage/limits", data={
            "csrf_token": csrf(page), "account": "other", "calls_per_minute": "7", "max_concurrent_calls": "2",
            "monthly_minutes": "90"})
        assert saved.status_code == 200 and "Limits of other saved." in saved.text
    changed = await services.accounts.get(other.id)
    assert (changed.calls_per_minute, changed.max_concurrent_calls, changed.monthly_minutes) == (7, 2, 90)


async def test_add_a_caller_id_through_the_carrier_check(database_url, tmp_path):
    services = await open_services(database_url, tmp_path, telephony="sip",
                                   sip_caller_ids="+14155550177,+442071838750")
    try:
        account, _ = await new_account(services, "acme")
        other, _ = await new_account(services, "other", caller_id="+14155550101")
        await services.accounts.add_number(other.id, "+442071838750")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                     base_url="http://testserver") as client:
            await signed_in(services, client, account)
            token = csrf((await client.get("/dashboard/developers")).text)

            async def add(number: str, **extra: str) -> httpx.Response:
                return await client.post("/dashboard/developers/caller-ids",
                                         data={"csrf_token": token, "number": number, **extra})

            malformed = await add("+1 415 555 0177")
            assert malformed.status_code == 400 and "E.164" in unescape(malformed.text)
            unconfirmed = await add("+12025550143")
            assert unconfirmed.status_code == 400 and "BYS_SIP_CALLER_IDS" in unconfirmed.text
            taken = await add("+442071838750")
            assert taken.status_code == 409 and "another account" in unescape(taken.text)
            added = await add("+14155550177", make_default="yes")
            assert added.status_code == 200 and "Caller ID +14155550177 added." in added.text
        assert "+14155550177" in await services.accounts.list_numbers(account.id)
        assert "+12025550143" not in await services.accounts.list_numbers(account.id)
        assert (await services.accounts.get(account.id)).default_caller_id == "+14155550177"
    finally:
        await services.aclose()


def test_charts_take_only_numbers_and_survive_odd_reports():
    from datetime import date

    from byourside_server.dashboard.charts import calls_per_day_chart, latency_chart
    from byourside_server.store.usage import UsageDay

    for odd in (None, {}, {"turns": []}, {"turns": "x"}, [1, 2]):
        assert latency_chart(odd) is None
    chart = latency_chart({"turns": [{"totalMs": "<script>", "sttMs": -5, "endpointingMs": 120}, "junk"]})
    assert [bar.total_ms for bar in chart.bars] == [120, 0] and chart.p50_ms is None
    assert channel_peaks(b"not a wav") is None
    days = calls_per_day_chart([UsageDay("2026-12-01", "completed", 3, 60), UsageDay("2026-12-01", "failed", 1, 0),
                                UsageDay("2026-11-20", "no_answer", 2, 0)], date(2026, 12, 1), 30)
    assert len(days.bars) == 30 and days.bars[-1].day == "2026-12-01" and days.bars[-1].total == 4
    assert [s.title for s in days.bars[-1].segments] == ["2026-12-01: 3 completed", "2026-12-01: 1 failed"]
    assert days.top == 4 and next(b for b in days.bars if b.day == "2026-11-20").total == 2
