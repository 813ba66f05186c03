"""``byourside demo --stay``, run as a real process: after the call it prints a one-time link
that signs into the dashboard on the demo call's page, where the transcript, the extracted
fields and their evidence are shown; the server keeps serving until SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
WAIT_SECONDS = 120  # a safety net for a busy machine, not a speed requirement


def read_link(process: subprocess.Popen, deadline: float) -> tuple[str, str]:
    """Reads stderr until the dashboard link; returns (link, what was read)."""
    seen = ""
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen += line
        match = re.search(r"(http://127\.0\.0\.1:\d+/dashboard/sign-in/link\?\S+)", line)
        if match:
            return match.group(1), seen
    raise AssertionError(f"no dashboard link printed:\n{seen}")


def test_the_demo_prints_a_link_that_opens_the_demo_call(tmp_path):
    env = {**os.environ, "BYS_DATA_DIR": str(tmp_path)}
    process = subprocess.Popen([str(BIN / "byourside"), "demo", "--stay", "--time-scale", "0"], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        link, said = read_link(process, time.monotonic() + WAIT_SECONDS)
        assert "completed (objective_met)" in said
        assert "keeps running until you press Ctrl+C" in process.stderr.readline()
        with httpx.Client(timeout=30) as browser:
            page = browser.get(link)
            assert page.status_code == 200 and "use-link" in page.text
            token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
            nxt = re.search(r'name="next" value="([^"]+)"', page.text).group(1)
            signed_in = browser.post(link.split("?")[0], data={
                "csrf_token": CSRF_RE.search(page.text).group(1), "token": token, "next": nxt})
            assert signed_in.status_code == 303 and signed_in.headers["location"].startswith("/dashboard/calls/")
            call = browser.get(httpx.URL(link).join(signed_in.headers["location"]))
            assert call.status_code == 200
            assert 'id="call-status">completed<' in call.text
            assert "eighty-five dollars" in call.text  # the transcript
            assert '<mark title="evidence for tasting_menu_price"' in call.text  # the evidence, highlighted
            assert re.search(r"<code>table_available</code></td>\s*<td class=\"value\">true<", call.text)
            again = browser.post(link.split("?")[0], data={
                "csrf_token": CSRF_RE.search(call.text).group(1), "token": token})
            assert again.status_code == 400  # the link signs in once
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert '"status": "completed"' in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_demo_ends_after_the_call_when_not_in_a_terminal(tmp_path):
    env = {**os.environ, "BYS_DATA_DIR": str(tmp_path)}
    result = subprocess.run([str(BIN / "byourside"), "demo", "--time-scale", "0"], env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=WAIT_SECONDS)
    assert result.returncode == 0, result.stderr
    assert "/dashboard/sign-in/link" not in result.stderr and "byourside demo --stay" in result.stderr
