"""The dashboard over HTTP in-process, on every store: sign-in by one-time link and by password,
CSRF refusal, the sign-in rate limit, sign-out everywhere, account isolation, the operator role,
escaping of what a callee said, and /docs and /redoc served without a CDN."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from byourside_server.api.app import create_app
from byourside_server.dashboard.users import OPERATOR, UserRepo
from byourside_server.runtime.registry import build_brain, build_telephony
from support import conduct_call, new_account

CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
HOSTILE_LINE = '<script>alert("owned")</script><img src=x onerror="alert(1)"><b>bold</b>'

HOSTILE_SCENARIOS = f"""
numbers:
  "+14155550199": hostile
personas:
  hostile:
    name: Mallory
    organisation: '<i>Evil</i> Corp'
    greeting: 'Hello, {HOSTILE_LINE} speaking.'
    fallback: '{HOSTILE_LINE}'
scenarios:
  hostile:
    kind: persona
    description: A callee whose every line is markup.
    ring_seconds: 1
    persona: hostile
"""


def users(services) -> UserRepo:  # noqa: ANN001
    return UserRepo(services.db, services.clock)


def csrf(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, html
    return match.group(1)


async def sign_in_by_link(client: httpx.AsyncClient, token: str) -> httpx.Response:
    page = await client.get(f"/dashboard/sign-in/link?token={token}")
    return await client.post("/dashboard/sign-in/link", data={"token": token, "csrf_token": csrf(page.text)})


async def browser(services) -> httpx.AsyncClient:  # noqa: ANN001
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)), base_url="http://testserver")


async def test_one_time_link_signs_in_once_then_password_and_sign_out(services, api):
    account, _ = await new_account(services, "acme")
    user = await users(services).create(account.id, "Ann@Example.com")
    token = await users(services).issue_link(user.id, timedelta(minutes=5))

    signed_in = await sign_in_by_link(api, token)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard/account"
    cookie = signed_in.headers["set-cookie"]
    assert "bys_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Path=/dashboard" in cookie and "Secure" not in cookie  # plain http base URL
    account_page = await api.get("/dashboard/account")
    assert account_page.status_code == 200 and "acme" in account_page.text

    async with await browser(services) as other:  # the same link a second time
        again = await sign_in_by_link(other, token)
        assert again.status_code == 400 and "expired or was already used" in again.text

    saved = await api.post("/dashboard/account/password", data={
        "csrf_token": csrf(account_page.text), "new_password": "correct horse 1", "confirm_password": "correct horse 1"})
    assert saved.status_code == 200 and "Password saved." in saved.text
    stored = await users(services).password_hash(user.id)
    assert stored.startswith("scrypt$15$8$1$") and "correct horse" not in stored

    signed_out = await api.post("/dashboard/sign-out", data={"csrf_token": csrf(saved.text)})
    assert signed_out.status_code == 303
    assert (await api.get("/dashboard/calls")).headers["location"] == "/dashboard/sign-in"

    form = await api.get("/dashboard/sign-in")
    wrong = await api.post("/dashboard/sign-in", data={"csrf_token": csrf(form.text), "email": "ann@example.com",
                                                       "password": "not the password"})
    assert wrong.status_code == 401
    right = await api.post("/dashboard/sign-in", data={"csrf_token": csrf(wrong.text), "email": "ANN@example.com",
                                                       "password": "correct horse 1"})
    assert right.status_code == 303 and right.headers["location"] == "/dashboard/calls"
    assert (await api.get("/dashboard/calls")).status_code == 200


async def test_expired_link_does_not_sign_in(services, api):
    account, _ = await new_account(services)
    user = await users(services).create(account.id, "late@example.com")
    token = await users(services).issue_link(user.id, timedelta(seconds=-1))
    assert (await sign_in_by_link(api, token)).status_code == 400
    assert (await api.get("/dashboard/calls")).status_code == 303


async def test_forms_without_a_valid_csrf_token_are_refused(services, api):
    account, _ = await new_account(services)
    user = await users(services).create(account.id, "c@example.com")
    token = await users(services).issue_link(user.id, timedelta(minutes=5))
    await api.get("/dashboard/sign-in")  # sets the pre-session cookie
    missing = await api.post("/dashboard/sign-in/link", data={"token": token})
    assert missing.status_code == 403
    async with await browser(services) as attacker:  # a token minted for another browser
        foreign = csrf((await attacker.get("/dashboard/sign-in")).text)
    forged = await api.post("/dashboard/sign-in/link", data={"token": token, "csrf_token": foreign})
    assert forged.status_code == 403
    assert (await sign_in_by_link(api, token)).status_code == 303  # the link was not used up by the refusals
    page = await api.get("/dashboard/account")
    refused = await api.post("/dashboard/sign-out-everywhere", data={"csrf_token": foreign})
    assert refused.status_code == 403 and (await api.get("/dashboard/account")).status_code == 200
    assert csrf(page.text) != foreign


async def test_sign_in_failures_are_rate_limited_per_email(services, api):
    from byourside_server.dashboard.passwords import hash_password

    account, _ = await new_account(services)
    user = await users(services).create(account.id, "r@example.com")
    await users(services).set_password_hash(user.id, hash_password("the right password"))
    token = csrf((await api.get("/dashboard/sign-in")).text)
    for _ in range(services.settings.dashboard_sign_in_failures_per_email):
        bad = await api.post("/dashboard/sign-in", data={"csrf_token": token, "email": "r@example.com", "password": "nope"})
        assert bad.status_code == 401
    blocked = await api.post("/dashboard/sign-in", data={"csrf_token": token, "email": "r@example.com",
                                                         "password": "the right password"})
    assert blocked.status_code == 429 and "bys_session" not in blocked.headers.get("set-cookie", "")


async def test_sign_out_everywhere_ends_every_session(services, api):
    account, _ = await new_account(services)
    user = await users(services).create(account.id, "e@example.com")
    await sign_in_by_link(api, await users(services).issue_link(user.id, timedelta(minutes=5)))
    async with await browser(services) as laptop:
        await sign_in_by_link(laptop, await users(services).issue_link(user.id, timedelta(minutes=5)))
        assert (await laptop.get("/dashboard/calls")).status_code == 200
        page = await api.get("/dashboard/account")
        assert (await api.post("/dashboard/sign-out-everywhere", data={"csrf_token": csrf(page.text)})).status_code == 303
        assert (await laptop.get("/dashboard/calls")).headers["location"] == "/dashboard/sign-in"


async def test_an_agent_key_never_signs_in(services, api):
    account, key = await new_account(services)
    await users(services).create(account.id, "k@example.com")
    bearer = await api.get("/dashboard/calls", headers={"Authorization": f"Bearer {key}"})
    assert bearer.status_code == 303 and bearer.headers["location"] == "/dashboard/sign-in"
    token = csrf((await api.get("/dashboard/sign-in")).text)
    as_password = await api.post("/dashboard/sign-in", data={"csrf_token": token, "email": "k@example.com", "password": key})
    assert as_password.status_code == 401


async def test_calls_are_isolated_by_account_and_operators_see_all(services, api, tmp_path):
    scenarios = tmp_path / "hostile.yaml"
    scenarios.write_text(HOSTILE_SCENARIOS)
    acme, _ = await new_account(services, "acme")
    other, _ = await new_account(services, "other", caller_id="+14155550101")
    settings = services.settings.model_copy(update={"sim_scenarios_file": scenarios})
    call = await conduct_call(services, other, build_telephony(settings, services.clock), build_brain(settings), {
        "to": "+14155550199", "objective": "Ask about <b>opening</b> hours",
        "webhookUrl": "http://127.0.0.1:9/hook?<b>x</b>",
        "fields": [{"name": "hours", "description": "the opening hours"}]})
    assert any(HOSTILE_LINE in t.text for t in call.turns), call.turns

    member = await users(services).create(acme.id, "m@example.com")
    await sign_in_by_link(api, await users(services).issue_link(member.id, timedelta(minutes=5)))
    assert (await api.get(f"/dashboard/calls/{call.id}")).status_code == 404
    assert (await api.get(f"/dashboard/calls/{call.id}/recording")).status_code == 404
    assert call.id not in (await api.get("/dashboard/calls")).text

    owner = await users(services).create(other.id, "o@example.com")
    operator = await users(services).create(acme.id, "op@example.com", OPERATOR)
    for user, list_url in ((owner, "/dashboard/calls"), (operator, "/dashboard/calls?account=other")):
        async with await browser(services) as client:
            await sign_in_by_link(client, await users(services).issue_link(user.id, timedelta(minutes=5)))
            listing = await client.get(list_url)
            page = await client.get(f"/dashboard/calls/{call.id}")
            assert page.status_code == 200 and call.id in listing.text
            for html in (listing.text, page.text):
                assert "<script>alert" not in html and "<img src=x" not in html and "<b>" not in html
            assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in page.text
            deliveries = re.search(r'<table class="deliveries".*?</table>', page.text, re.S).group(0)
            assert "call.in_progress" in deliveries and "call.completed" in deliveries and "pending" in deliveries
            assert "/hook?&lt;b&gt;x&lt;/b&gt;" in deliveries
            assert "Content-Security-Policy" in page.headers and "script-src 'self'" in page.headers["Content-Security-Policy"]


async def test_secure_cookie_when_the_public_url_is_https(database_url, tmp_path):
    from support import open_services

    services = await open_services(database_url, tmp_path, public_base_url="https://calls.example.com")
    try:
        account, _ = await new_account(services)
        user = await users(services).create(account.id, "s@example.com")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                     base_url="https://testserver") as client:
            response = await sign_in_by_link(client, await users(services).issue_link(user.id, timedelta(minutes=5)))
        assert response.status_code == 303 and "Secure" in response.headers["set-cookie"]
    finally:
        await services.aclose()


async def test_root_redirects_and_api_docs_use_local_assets(api):
    assert (await api.get("/")).headers["location"] == "/dashboard"
    for path in ("/docs", "/redoc"):
        html = (await api.get(path)).text
        assert "cdn." not in html and "fonts.googleapis" not in html and "/dashboard/static/vendor/" in html
        for asset in re.findall(r'(?:src|href)="(/dashboard/static/[^"]+)"', html):
            served = await api.get(asset)
            assert served.status_code == 200 and len(served.content) > 100, asset


async def test_a_link_is_used_once_even_when_clicked_twice_at_once(services):
    import asyncio

    account, _ = await new_account(services)
    user = await users(services).create(account.id, "twice@example.com")
    token = await users(services).issue_link(user.id, timedelta(minutes=5))
    results = await asyncio.gather(users(services).consume_link(token), users(services).consume_link(token))
    assert sorted(r is not None for r in results) == [False, True]


async def test_developers_page_creates_and_revokes_keys_and_sets_the_default_caller_id(services, api):
    account, _ = await new_account(services, "acme")
    other, other_key = await new_account(services, "other", caller_id="+14155550101")
    user = await users(services).create(account.id, "dev@example.com")
    await sign_in_by_link(api, await users(services).issue_link(user.id, timedelta(minutes=5)))
    page = await api.get("/dashboard/developers")
    created = await api.post("/dashboard/developers/keys", data={"csrf_token": csrf(page.text), "name": "<i>ci</i>"})
    secret = re.search(r'<code id="new-key">(bys_ak_\w+)</code>', created.text).group(1)
    assert "&lt;i&gt;ci&lt;/i&gt;" in created.text
    bearer = {"Authorization": f"Bearer {secret}"}
    assert (await api.get("/v1/agent/calls", headers=bearer)).status_code == 200
    assert secret not in (await api.get("/dashboard/developers")).text  # shown once

    key_id = next(k.id for k in await services.accounts.list_keys(account.id) if k.name == "<i>ci</i>")
    token = csrf(created.text)
    asked = await api.post(f"/dashboard/developers/keys/{key_id}/revoke", data={"csrf_token": token})
    assert asked.status_code == 200 and "confirm-revoke" in asked.text
    assert (await api.get("/v1/agent/calls", headers=bearer)).status_code == 200  # not yet revoked
    done = await api.post(f"/dashboard/developers/keys/{key_id}/revoke", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 200 and "revoked" in done.text
    assert (await api.get("/v1/agent/calls", headers=bearer)).status_code == 401

    theirs = (await services.accounts.list_keys(other.id))[0].id
    foreign = await api.post(f"/dashboard/developers/keys/{theirs}/revoke", data={"csrf_token": token, "confirm": "yes"})
    assert foreign.status_code == 404
    assert (await api.get("/v1/agent/calls", headers={"Authorization": f"Bearer {other_key}"})).status_code == 200

    await services.accounts.add_number(account.id, "+14155550111")
    refused = await api.post("/dashboard/developers/default-caller-id", data={"csrf_token": token, "number": "+14155550999"})
    assert refused.status_code == 400
    assert (await services.accounts.get(account.id)).default_caller_id == "+14155550100"
    chosen = await api.post("/dashboard/developers/default-caller-id", data={"csrf_token": token, "number": "+14155550111"})
    assert chosen.status_code == 200 and (await services.accounts.get(account.id)).default_caller_id == "+14155550111"
