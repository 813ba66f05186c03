"""What the browser tests share: the hostile persona, signing in, waiting, screenshots, API clients."""

from __future__ import annotations

import uuid
from pathlib import Path

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from e2e_server import RunningServer

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


def sign_in_link(server: RunningServer, email: str, account: str = "default") -> str:
    return server.cli("users", "create", "--account", account, "--email", email).stdout.strip().splitlines()[-1]


def wait_for(driver, condition, message: str):  # noqa: ANN001
    # Between a click and the next page, elements vanish mid-query; those errors mean "not yet".
    waiting = WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.2, ignored_exceptions=(WebDriverException,))
    return waiting.until(lambda d: condition(d), message)


def ensure_signed_in(browser, server: RunningServer) -> None:  # noqa: ANN001
    """Each test can run alone: sign in through a fresh user's link unless already signed in."""
    browser.get(f"{server.base_url}/dashboard/account")
    if browser.current_url.endswith("/dashboard/account"):
        return
    browser.get(sign_in_link(server, f"user-{uuid.uuid4().hex[:8]}@example.com"))
    browser.find_element(By.ID, "use-link").click()
    wait_for(browser, lambda d: d.current_url.endswith("/dashboard/account"), "not signed in by the link")


def full_page(browser, path: Path) -> None:  # noqa: ANN001
    browser.execute_script("window.scrollTo(0, 0)")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1100, min(max(height, 850), 3000))
    try:
        browser.save_screenshot(str(path))
    finally:
        browser.set_window_size(1100, 850)


def client(server: RunningServer, account: str = "default"):  # noqa: ANN201
    import byourside

    return byourside.Client(server.new_key(account), base_url=server.base_url)
