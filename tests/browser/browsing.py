"""What the browser tests share: the hostile persona, signing in, waiting, screenshots, API clients,
calls held queued until a test lets them run."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from e2e_server import RunningServer
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough password"
# Every line of this callee is markup; if any of it ran, window.__owned would be set.
HOSTILE = '<script>window.__owned = 1</script><img src=x onerror="window.__owned = 2"><b>bold</b>'
HOSTILE_SCENARIOS = f"""
numbers:
  "+14155550199": hostile
personas:
  hostile:
    name: Mallory
    organisation: '<i>Evil</i> Corp'
    greeting: 'Hello, {HOSTILE} speaking.'
    fallback: '{HOSTILE}'
scenarios:
  hostile:
    kind: persona
    description: 'A callee whose every line is markup: {HOSTILE}'
    ring_seconds: 1
    persona: hostile
"""
WAIT_SECONDS = 90  # a safety net for a busy machine, not a speed requirement
# The API docs run ~2 MB of script, slow on a loaded machine: a ceiling for loading a page at all.
HEAVY_PAGE_SECONDS = 4 * WAIT_SECONDS


def sign_in_link(server: RunningServer, email: str, account: str = "default") -> str:
    return server.cli("users", "create", "--account", account, "--email", email).stdout.strip().splitlines()[-1]


def wait_for(driver, condition, message: str, seconds: float = WAIT_SECONDS):
    # Between a click and the next page, elements vanish mid-query; those errors mean "not yet".
    waiting = WebDriverWait(driver, seconds, poll_frequency=0.2, ignored_exceptions=(WebDriverException,))
    return waiting.until(lambda d: condition(d), message)


def ensure_signed_in(browser, server: RunningServer) -> None:
    """Each test can run alone: sign in through a fresh user's link unless already signed in."""
    browser.get(f"{server.base_url}/dashboard/account")
    if browser.current_url.endswith("/dashboard/account"):
        return
    browser.get(sign_in_link(server, f"user-{uuid.uuid4().hex[:8]}@example.com"))
    browser.find_element(By.ID, "use-link").click()
    wait_for(browser, lambda d: d.current_url.endswith("/dashboard/account"), "not signed in by the link")


def full_page(browser, path: Path) -> None:
    browser.execute_script("window.scrollTo(0, 0)")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1100, min(max(height, 850), 3000))
    try:
        browser.save_screenshot(str(path))
    finally:
        browser.set_window_size(1100, 850)


_keys: dict[tuple[str, str], str] = {}


def api_key(server: RunningServer, account: str = "default") -> str:
    """One API key per account and server, made once (each ``keys create`` is a CLI process)."""
    where = (server.env["BYS_DATA_DIR"], account)  # a server's own data (a later one may reuse its port)
    if where not in _keys:
        _keys[where] = server.new_key(account)
    return _keys[where]


def client(server: RunningServer, account: str = "default"):
    import byourside

    return byourside.Client(api_key(server, account), base_url=server.base_url)


def page_status(browser) -> int:
    """The HTTP status of the page the browser shows (Navigation Timing)."""
    return browser.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus")


def held_call(server: RunningServer, to: str, objective: str, **body: Any) -> str:
    """Place a call through the API that stays ``queued`` until ``release``: it is scheduled an hour
    ahead. A test can then open a page on it, see it queued, and watch it change once released,
    however slowly the machine runs (no call has to last long enough to be caught in a state)."""
    when = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    request = urllib.request.Request(
        f"{server.base_url}/v1/agent/calls", method="POST",
        data=json.dumps({"to": to, "objective": objective, "scheduledAt": when, **body}).encode(),
        headers={"Authorization": f"Bearer {api_key(server)}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
        created = json.load(response)
    assert created["status"] == "queued", created
    return created["callId"]


def release(server: RunningServer, call_id: str) -> None:
    """Make a held call due now, as if its hour had passed: a worker dials it at its next poll."""
    with closing(sqlite3.connect(Path(server.env["BYS_DATA_DIR"]) / "byourside.db")) as db, db:
        changed = db.execute("UPDATE calls SET not_before = created_at WHERE id = ? AND status = 'queued'",
                             (call_id,)).rowcount
    assert changed == 1, f"call {call_id} was not waiting"
