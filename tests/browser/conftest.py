"""Fixtures for the browser tests: Debian's chromium driven headless by Selenium through
/usr/bin/chromedriver (given explicitly, so Selenium Manager never tries to download a driver),
against a real ``byourside serve`` process (tests/e2e/e2e_server.py).

Without chromium these tests skip, except under CI=true, where they fail
(``make system-packages`` installs chromium and chromium-driver)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from browsing import HOSTILE_SCENARIOS, ROOT  # noqa: E402
from e2e_server import start_server  # noqa: E402
from support import IN_CI  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


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
                     "--window-size=1100,850", "--autoplay-policy=no-user-gesture-required", "--mute-audio"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("browser")
    (data / "scenarios.yaml").write_text(HOSTILE_SCENARIOS)
    # Simulated time at a fifth of real time: a call lasts seconds, long enough to watch it change.
    running = start_server(data / "server", None, BYS_SIM_TIME_SCALE="0.2",
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
