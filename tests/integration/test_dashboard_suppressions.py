"""The dashboard's Do-not-call page over HTTP in-process, on every store: add, list (masked),
remove after a confirmation, CSV import with its rejected rows, CSRF refusal, account
isolation, the operator choosing an account, a number added here refused at placement, and
a reason with markup shown as text."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from byourside_server.api.app import create_app
from byourside_server.dashboard.users import OPERATOR, UserRepo
from support import auth, new_account

CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
SF = "+14155551234"
SF_MASKED = "+1415•••••34"
LONDON = "+442071234567"


def csrf(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, html
    return match.group(1)


async def signed_in(services, client: httpx.AsyncClient, account_id: str, email: str, role: str = "member"):
    users = UserRepo(services.db, services.clock)
    user = await users.create(account_id, email, role)
    token = await users.issue_link(user.id, timedelta(minutes=5))
    form = await client.get(f"/dashboard/sign-in/link?token={token}")
    done = await client.post("/dashboard/sign-in/link", data={"token": token, "csrf_token": csrf(form.text)})
    assert done.status_code == 303
    return user


def browser(services) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)), base_url="http://testserver")


async def add(client: httpx.AsyncClient, number: str, note: str = "", **extra: str) -> httpx.Response:
    page = await client.get("/dashboard/suppressions")
    return await client.post("/dashboard/suppressions",
                             data={"csrf_token": csrf(page.text), "number": number, "note": note, **extra})


async def test_add_list_remove_and_placement_refused(services, api):
    account, secret = await new_account(services, "acme")
    await signed_in(services, api, account.id, "ann@example.com")

    nav = await api.get("/dashboard/calls")
    assert 'href="/dashboard/suppressions"' in nav.text

    added = await add(api, SF, "asked by email")
    assert added.status_code == 200 and f"{SF} added to the do-not-call list." in added.text
    assert SF_MASKED in added.text and "asked by email" in added.text
    assert "added by hand" in added.text and 'id="suppressed-total">1<' in added.text
    entry = await services.suppressions.get(account.id, SF)
    assert entry is not None and entry.note == "asked by email"

    again = await add(api, " " + SF + " ")
    assert again.status_code == 200 and "was already on the list" in again.text

    refused = await api.post("/v1/agent/calls", json={"to": SF, "objective": "Confirm tomorrow's appointment."},
                             headers=auth(secret))
    assert refused.status_code == 403 and refused.json()["error"] == "destination_suppressed"
    listed = (await api.get("/v1/agent/suppressions", headers=auth(secret))).json()["suppressions"]
    assert [(s["number"], s["note"]) for s in listed] == [(SF, "asked by email")]

    bad = await add(api, "0800 123")
    assert bad.status_code == 400 and "invalid_number: " in bad.text
    assert await services.suppressions.count(account.id) == 1

    page = await api.get("/dashboard/suppressions")
    confirm = await api.post("/dashboard/suppressions/remove", data={"csrf_token": csrf(page.text), "number": SF})
    assert confirm.status_code == 200 and 'id="confirm-remove"' in confirm.text
    assert await services.suppressions.contains(account.id, SF)  # nothing removed before the confirmation
    removed = await api.post("/dashboard/suppressions/remove",
                             data={"csrf_token": csrf(confirm.text), "number": SF, "confirm": "yes"})
    assert removed.status_code == 200 and "removed from the do-not-call list" in removed.text
    assert not await services.suppressions.contains(account.id, SF)
    assert 'id="suppressed-total">0<' in removed.text
    gone = await api.post("/dashboard/suppressions/remove",
                          data={"csrf_token": csrf(removed.text), "number": SF, "confirm": "yes"})
    assert gone.status_code == 404


async def test_opt_out_entries_show_their_call(services, api):
    account, _ = await new_account(services)
    await services.suppressions.add(account.id, [LONDON], source="opt_out")
    await signed_in(services, api, account.id, "o@example.com")
    page = await api.get("/dashboard/suppressions")
    assert "opt-out spoken on a call" in page.text and "+4420••••••67" in page.text
    assert f'<span class="unmasked">{LONDON}</span>' in page.text  # revealed by "Show full numbers"


async def test_csv_import_reports_rejected_rows(services, api):
    account, _ = await new_account(services)
    await services.suppressions.add(account.id, [LONDON], source="cli")
    await signed_in(services, api, account.id, "csv@example.com")
    page = await api.get("/dashboard/suppressions")
    csv_file = f"name,phone\nAnn,{SF}\nBob,not a number\n\nCat,{LONDON}\n".encode()
    imported = await api.post("/dashboard/suppressions/import", data={"csrf_token": csrf(page.text)},
                              files={"file": ("numbers.csv", csv_file, "text/csv")})
    assert imported.status_code == 200, imported.text
    assert 'id="import-added">1<' in imported.text and 'id="import-already">1<' in imported.text
    assert 'id="import-rejected-count">1<' in imported.text
    rejected = re.search(r'<tr data-row="(\d+)"><td>\d+</td><td><code>(\w+)</code>', imported.text)
    assert rejected and rejected.groups() == ("3", "invalid_number")
    entry = await services.suppressions.get(account.id, SF)
    assert entry is not None and entry.source == "csv"
    assert "imported from a CSV file" in imported.text

    not_csv = await api.post("/dashboard/suppressions/import", data={"csrf_token": csrf(imported.text)},
                             files={"file": ("x.csv", b"\xff\xfe\x00bad", "text/csv")})
    assert not_csv.status_code == 400 and "invalid_request: The file must be UTF-8 CSV" in not_csv.text
    assert await services.suppressions.count(account.id) == 2


async def test_forms_without_a_valid_csrf_token_change_nothing(services, api):
    account, _ = await new_account(services)
    await services.suppressions.add(account.id, [LONDON], source="api")
    await signed_in(services, api, account.id, "c@example.com")
    async with browser(services) as attacker:
        foreign = csrf((await attacker.get("/dashboard/sign-in")).text)
    for token in ("", foreign):
        assert (await api.post("/dashboard/suppressions", data={"csrf_token": token, "number": SF})).status_code == 403
        assert (await api.post("/dashboard/suppressions/remove", data={
            "csrf_token": token, "number": LONDON, "confirm": "yes"})).status_code == 403
        assert (await api.post("/dashboard/suppressions/import", data={"csrf_token": token},
                               files={"file": ("n.csv", SF.encode(), "text/csv")})).status_code == 403
    assert await services.suppressions.among(account.id, [SF, LONDON]) == {LONDON}


async def test_another_accounts_list_is_invisible_and_operators_choose(services, api):
    acme, _ = await new_account(services, "acme")
    globex, _ = await new_account(services, "globex", caller_id="+14155550101")
    await services.suppressions.add(globex.id, [LONDON], source="api", note="globex secret")
    await signed_in(services, api, acme.id, "ann@example.com")

    page = await api.get("/dashboard/suppressions?account=globex")
    assert "globex secret" not in page.text and "+4420" not in page.text
    assert 'id="suppressed-total">0<' in page.text
    removal = await api.post("/dashboard/suppressions/remove",
                             data={"csrf_token": csrf(page.text), "number": LONDON, "confirm": "yes",
                                   "account": "globex"})
    assert removal.status_code == 404 and await services.suppressions.contains(globex.id, LONDON)
    added = await add(api, SF, account="globex")  # a member's form always acts on their own account
    assert added.status_code == 200
    assert await services.suppressions.contains(acme.id, SF)
    assert not await services.suppressions.contains(globex.id, SF)

    async with browser(services) as operator:
        await signed_in(services, operator, acme.id, "op@example.com", OPERATOR)
        theirs = await operator.get("/dashboard/suppressions?account=globex")
        assert "globex secret" in theirs.text and "list of globex" in theirs.text
        unknown = await operator.post("/dashboard/suppressions", data={
            "csrf_token": csrf(theirs.text), "number": SF, "account": "nobody"})
        assert unknown.status_code == 404


async def test_markup_in_a_reason_is_shown_as_text(services, api):
    account, _ = await new_account(services)
    await signed_in(services, api, account.id, "x@example.com")
    hostile = '<script>alert("owned")</script><b>bold</b>'
    added = await add(api, SF, hostile)
    assert added.status_code == 200
    assert hostile not in added.text and "<b>bold</b>" not in added.text
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in added.text
    page = await api.get("/dashboard/suppressions")
    confirm = await api.post("/dashboard/suppressions/remove", data={"csrf_token": csrf(page.text), "number": SF})
    assert "<script>" not in confirm.text and "&lt;b&gt;bold&lt;/b&gt;" in confirm.text
