"""Fixtures for the browser tests: Debian's chromium driven headless by Selenium through
/usr/bin/chromedriver (given explicitly, so Selenium Manager never tries to download a driver),
against a real ``byourside serve`` process (tests/e2e/e2e_server.py).

One browser and one server serve every test of a module (each test places its own calls and
signs in as it needs, so none depends on another's data); both end with the module, so nothing
of theirs stays running while the rest of the suite runs.

Without chromium these tests skip, except under CI=true, where they fail
(``make system-packages`` installs chromium and chromium-driver)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from browsing import HEAVY_PAGE_SECONDS, HOSTILE_SCENARIOS, ROOT
from e2e_server import start_server
from support import IN_CI

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Kills process group argv[2] once process argv[1] (this pytest) is gone, however it ended.
_GROUP_WATCHDOG = """
import os, signal, sys, time
parent, group = int(sys.argv[1]), int(sys.argv[2])
while os.getppid() == parent:
    time.sleep(0.5)
try:
    os.killpg(group, signal.SIGKILL)
except ProcessLookupError:
    pass
"""


@pytest.fixture(scope="module")
def browser():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        message = f"{', '.join(missing)} not installed (make system-packages: apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1100,850", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                     # Offline: every request off loopback goes to a proxy that is not there, and fails.
                     "--proxy-server=http://127.0.0.1:9"):
        options.add_argument(argument)
    # chromedriver leads a process group that chromium joins; a watchdog kills that group if this
    # process dies without quitting the driver (killed pytest), so no browser outlives the tests.
    service = Service(executable_path=CHROMEDRIVER, popen_kw={"start_new_session": True})
    driver = webdriver.Chrome(service=service, options=options)
    watchdog = subprocess.Popen([sys.executable, "-c", _GROUP_WATCHDOG, str(os.getpid()), str(service.process.pid)])
    driver.set_page_load_timeout(HEAVY_PAGE_SECONDS)
    yield driver
    driver.quit()
    watchdog.kill()
    watchdog.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("browser")
    (data / "scenarios.yaml").write_text(HOSTILE_SCENARIOS)
    # Simulated time runs as fast as it can: a test that watches a call change holds it queued
    # first (browsing.held_call), so nothing depends on a call lasting long enough to be seen.
    running = start_server(data / "server", None, BYS_SIM_TIME_SCALE="0",
                           BYS_SIM_SCENARIOS_FILE=str(data / "scenarios.yaml"),
                           # Webhooks to a receiver on loopback, one attempt each unless delivered again.
                           BYS_WEBHOOK_ALLOW_HTTP="true", BYS_WEBHOOK_ALLOW_PRIVATE="true",
                           BYS_WEBHOOK_RETRY_SCHEDULE="0", BYS_WEBHOOK_POLL_SECONDS="0.2")
    running.cli("accounts", "create", "other")
    running.cli("numbers", "add", "--account", "other", "+14155550101", "--default")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("BYS_UPDATE_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        return target
    return tmp_path_factory.mktemp("screenshots")
