"""The dashboard in a real browser (headless chromium) against a real ``byourside serve``:
sign-in through a one-time link, a password, sign-out; a forged form refused; a call placed
through the API followed live to ``completed`` in the calls list and opened; a recording
played through the dashboard session, with its waveform and latency chart, a click on a turn
moving playback there; a callee's markup shown as inert text on every page (also as it arrives
live); another account's call answered 404; keys created and revoked, the default caller ID set.

Screenshots of each page go to a temporary directory, or to docs/screenshots/ with
BYS_UPDATE_SCREENSHOTS=1 (how the README's pictures are made)."""

from __future__ import annotations

import json
import math
import sqlite3
import struct
import wave
from pathlib import Path

import pytest
from browsing import (
    HEAVY_PAGE_SECONDS,
    HOSTILE,
    PASSWORD,
    WAIT_SECONDS,
    client,
    ensure_signed_in,
    full_page,
    held_call,
    page_status,
    release,
    sign_in_link,
    wait_for,
)
from e2e_server import RunningServer
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By

pytestmark = pytest.mark.e2e


def test_sign_in_with_a_link_set_a_password_sign_out_and_back_in(browser, server, shots):
    link = sign_in_link(server, "ada@example.com")
    assert link.startswith(f"{server.base_url}/dashboard/sign-in/link?token=")
    browser.delete_all_cookies()
    browser.get(link)
    browser.save_screenshot(str(shots / "sign-in-link.png"))
    browser.find_element(By.ID, "use-link").click()
    wait_for(browser, lambda d: d.current_url.endswith("/dashboard/account"), "not signed in by the link")
    assert browser.find_element(By.ID, "account-name").text == "default"

    browser.find_element(By.NAME, "new_password").send_keys(PASSWORD)
    browser.find_element(By.NAME, "confirm_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#password-form button").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "notice").text == "Password saved.", "password not saved")
    browser.save_screenshot(str(shots / "account.png"))

    browser.find_element(By.ID, "sign-out").click()
    wait_for(browser, lambda d: d.current_url.endswith("/dashboard/sign-in"), "not signed out")
    browser.get(f"{server.base_url}/dashboard/calls")
    assert browser.current_url.endswith("/dashboard/sign-in")  # signed out: the calls redirect

    browser.get(link)  # the link was single use
    browser.find_element(By.ID, "use-link").click()
    wait_for(browser, lambda d: "expired or was already used" in d.find_element(By.ID, "error-message").text,
             "the used link was accepted again")

    browser.get(f"{server.base_url}/dashboard/sign-in")
    browser.find_element(By.NAME, "email").send_keys("ada@example.com")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.save_screenshot(str(shots / "sign-in.png"))
    browser.find_element(By.CSS_SELECTOR, "#sign-in-form button").click()
    wait_for(browser, lambda d: d.current_url.endswith("/dashboard/calls"), "password sign-in failed")


def test_a_forged_form_is_refused(browser, server):
    ensure_signed_in(browser, server)
    browser.get(f"{server.base_url}/dashboard/account")
    assert browser.current_url.endswith("/dashboard/account")  # still signed in from the test above
    browser.execute_script("document.querySelector('header form input[name=csrf_token]').value = '0'.repeat(64)")
    browser.find_element(By.ID, "sign-out").click()
    wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Form expired", "the forged form was accepted")
    assert page_status(browser) == 403
    browser.get(f"{server.base_url}/dashboard/account")
    assert browser.current_url.endswith("/dashboard/account")  # the forged sign-out did nothing


def test_a_call_placed_through_the_api_completes_live_in_the_list(browser, server, shots):
    ensure_signed_in(browser, server)
    browser.get(f"{server.base_url}/dashboard/calls")
    browser.execute_script("window.__same_page = true")
    # Placed while the list is open, and held queued until the list has shown it.
    call_id = held_call(server, "+14155550123", "Ask if they have a table for two tonight and the tasting menu price",
                        fields=[{"name": "table_available", "type": "boolean"},
                                {"name": "tasting_menu_price", "type": "number"}])
    status = f'tr[data-call-id="{call_id}"] .status'
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, status).text == "queued", "the new call never appeared")
    release(server, call_id)
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, status).text == "completed", "never completed")
    assert browser.execute_script("return window.__same_page") is True  # updated in place, no reload
    masked = browser.find_element(By.CSS_SELECTOR, f'tr[data-call-id="{call_id}"] .number').text
    assert masked == "+1415•••••23"
    browser.save_screenshot(str(shots / "calls.png"))

    browser.find_element(By.CSS_SELECTOR, f'tr[data-call-id="{call_id}"] a').click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "transcript"), "no transcript")
    assert browser.find_element(By.ID, "call-status").text == "completed"
    assert browser.find_element(By.ID, "objective-met").text == "yes"
    timeline = browser.find_element(By.ID, "timeline").text
    assert all(step in timeline for step in ("queued", "dialing", "in_progress", "completed")), timeline
    assert "eighty-five dollars" in browser.find_element(By.ID, "transcript").text
    assert "85" in browser.find_element(By.ID, "fields").text
    assert browser.find_elements(By.CSS_SELECTOR, '#transcript mark[data-field="tasting_menu_price"]')
    assert call_id in browser.find_element(By.ID, "raw-json").get_attribute("textContent")
    assert not browser.find_elements(By.ID, "recording")  # a simulator (text) call has no recording
    full_page(browser, shots / "call.png")


def test_a_recording_plays_through_the_dashboard_session(browser, server, shots, tmp_path):
    ensure_signed_in(browser, server)
    call = client(server).place_call("+14155550125", "Ask for the opening hours on Saturday")
    done = client(server).wait_for_call(call["callId"], timeout=WAIT_SECONDS, interval=0.2)
    assert done["status"] == "completed"
    # Text calls have no audio; give this one the recording a SIP call would leave (stereo, 8 kHz, the
    # callee on the left, the agent on the right): a tone on each side while that side speaks.
    seconds = done["turns"][-1]["endMs"] / 1000 + 1
    loud = [(t["startMs"] * 8, t["endMs"] * 8, 0 if t["speaker"] == "contact" else 1) for t in done["turns"]]
    frames = bytearray()
    for i in range(int(8000 * seconds)):
        level = [200, 200]
        for start, end, side in loud:
            if start <= i < end:
                level[side] = 9000 + 3000 * math.sin(i / 900)
        tone = math.sin(2 * math.pi * 220 * i / 8000)
        frames += struct.pack("<hh", int(level[0] * tone), int(level[1] * tone))
    recording = tmp_path / "recording.wav"
    with wave.open(str(recording), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(frames))
    latency = json.dumps({"turns": [{"speechEndMs": 900, "endpointingMs": 280, "sttMs": 190, "llmFirstTokenMs": 420,
                                     "ttsFirstAudioMs": 110, "totalMs": 1000},
                                    {"speechEndMs": 4100, "endpointingMs": 240, "sttMs": 160, "llmFirstTokenMs": 350,
                                     "ttsFirstAudioMs": 90, "totalMs": 840}],
                          "p50": {"totalMs": 840}, "p90": {"totalMs": 1000}})
    with sqlite3.connect(Path(server.env["BYS_DATA_DIR"]) / "byourside.db") as db:
        db.execute("UPDATE calls SET recording_path = ?, latency = ? WHERE id = ?",
                   (str(recording), latency, call["callId"]))
    browser.get(f"{server.base_url}/dashboard/calls/{call['callId']}")
    duration = wait_for(browser, lambda d: d.execute_script(
        "const a = document.getElementById('recording'); return a && a.readyState >= 1 ? a.duration : null"),
        "the audio element never loaded the recording")
    assert abs(duration - seconds) < 0.05
    wait_for(browser, lambda d: d.execute_script(
        "const i = document.querySelector('#waveform img'); return i && i.complete && i.naturalWidth > 0"),
        "the waveform did not load")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#latency-chart g[data-turn]")) == 2

    later = browser.find_elements(By.CSS_SELECTOR, "#transcript [data-seek-ms]")[-1]
    start = int(later.get_attribute("data-seek-ms")) / 1000
    later.click()  # plays the recording from that turn
    position = wait_for(browser, lambda d: d.execute_script(
        "const a = document.getElementById('recording'); return a.currentTime > 0 ? a.currentTime : null"),
        "clicking a turn did not move the recording")
    assert start - 0.05 <= position <= start + 2, (start, position)
    browser.execute_script("document.getElementById('recording').pause()")
    full_page(browser, shots / "call-recording.png")


def test_what_a_callee_says_is_inert_text_on_every_page(browser, server, shots):
    ensure_signed_in(browser, server)
    call_id = held_call(server, "+14155550199", "Ask about <b>opening</b> hours <script>window.__owned=3</script>",
                        fields=[{"name": "hours", "description": "the opening hours"}])
    # Watched live: the page opens on the queued call; the callee's lines reach it through its live stream.
    browser.get(f"{server.base_url}/dashboard/calls/{call_id}")
    # Read in one step: the live region may swap the element between a find and a read.
    assert browser.execute_script("return document.getElementById('call-status').textContent") == "queued"
    release(server, call_id)
    wait_for(browser, lambda d: d.find_element(By.ID, "call-status").text == "completed", "never completed")
    wait_for(browser, lambda d: HOSTILE in d.find_element(By.ID, "transcript").text, "the transcript never arrived")
    assert browser.execute_script("return window.__owned") is None
    assert not browser.find_elements(By.CSS_SELECTOR, "main b, main img, main i, main script")
    done = client(server).get_call(call_id)
    assert any(HOSTILE in turn["text"] for turn in done["turns"]), done["turns"]
    for path in ("/dashboard/calls", "/dashboard/calls?q=opening", "/dashboard/place", "/dashboard/usage",
                 "/dashboard/developers", "/dashboard/account", f"/dashboard/calls/{call_id}"):
        browser.get(server.base_url + path)
        wait_for(browser, lambda d: d.execute_script("return document.readyState") == "complete", "")
        assert browser.execute_script("return window.__owned") is None, path
        assert not browser.find_elements(By.CSS_SELECTOR, "main b, main img, main i, main script"), path
        if path == "/dashboard/place":  # the sandbox lists each scenario's description
            assert HOSTILE in browser.find_element(By.ID, "sandbox-card").text
    transcript = browser.find_element(By.ID, "transcript").text
    assert HOSTILE in transcript  # shown as the characters the callee said
    assert "<script>window.__owned=3</script>" in browser.find_element(By.ID, "objective").text
    full_page(browser, shots / "call-markup-escaped.png")


def test_another_accounts_call_is_not_found(browser, server, shots):
    ensure_signed_in(browser, server)
    theirs = client(server, "other").place_call("+14155550123", "Ask about a table for two tonight")
    browser.get(f"{server.base_url}/dashboard/calls/{theirs['callId']}")
    assert page_status(browser) == 404
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    assert theirs["callId"] not in browser.page_source
    browser.save_screenshot(str(shots / "not-found.png"))
    for part in ("recording", "waveform.svg"):  # nor its recording, through this session
        status = browser.execute_async_script(
            "fetch(arguments[0]).then(r => arguments[1](r.status), () => arguments[1](0))",
            f"/dashboard/calls/{theirs['callId']}/{part}")
        assert status == 404, part
    browser.get(f"{server.base_url}/dashboard/calls")
    assert not browser.find_elements(By.CSS_SELECTOR, f'tr[data-call-id="{theirs["callId"]}"]')


def test_api_docs_render_offline(browser, server, shots):
    browser.get(f"{server.base_url}/docs")
    wait_until_rendered(browser, "Swagger UI",
                        "return !!document.querySelector('.swagger-ui .opblock-post [data-path=\"/v1/agent/calls\"]')")
    browser.save_screenshot(str(shots / "api-docs.png"))
    assert_every_request_stayed_local(browser, server)
    browser.get(f"{server.base_url}/redoc")
    wait_until_rendered(browser, "ReDoc", "return Array.from(document.querySelectorAll('[data-section-id^=\"operation/\"]'))"
                                          ".some(s => s.textContent.includes('/v1/agent/calls'))")
    assert_every_request_stayed_local(browser, server)


def wait_until_rendered(browser, name: str, script: str) -> None:
    """Wait for ``script`` (a DOM condition, read in one call; never the visible text, which depends
    on layout) to hold, with a ceiling generous enough for a loaded machine."""
    try:
        wait_for(browser, lambda d: d.execute_script(script), "", HEAVY_PAGE_SECONDS)
    except TimeoutException:
        shown = browser.execute_script("return document.body ? document.body.textContent.slice(0, 300) : null")
        loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        raise AssertionError(f"{name} did not render; the page shows {shown!r}; it loaded {loaded}") from None


def assert_every_request_stayed_local(browser, server: RunningServer) -> None:
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(u.startswith(server.base_url) for u in urls), urls


def test_create_and_revoke_a_key_and_set_the_default_caller_id(browser, server, shots):
    ensure_signed_in(browser, server)
    import byourside

    browser.get(f"{server.base_url}/dashboard/developers")
    browser.find_element(By.NAME, "name").send_keys("from the browser")
    browser.find_element(By.CSS_SELECTOR, "#create-key-form button").click()
    secret = wait_for(browser, lambda d: d.find_element(By.ID, "new-key").text, "no key shown")
    assert secret.startswith("bys_ak_")
    browser.save_screenshot(str(shots / "developers.png"))
    api = byourside.Client(secret, base_url=server.base_url)
    assert isinstance(api.list_calls(), list)  # the new key works

    row = wait_for(browser, lambda d: [r for r in d.find_elements(By.CSS_SELECTOR, "#keys tbody tr")
                                       if "from the browser" in r.text], "key not listed")[0]
    row.find_element(By.CSS_SELECTOR, "button.danger").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "confirm-revoke"), "no confirmation").click()
    wait_for(browser, lambda d: "revoked" in d.find_element(By.ID, "notice").text, "not revoked")
    with pytest.raises(byourside.ByoursideError) as refused:
        api.list_calls()
    assert (refused.value.status, refused.value.code) == (401, "unauthorized")

    server.cli("numbers", "add", "--account", "default", "+14155550111")
    browser.get(f"{server.base_url}/dashboard/developers")
    browser.find_element(By.CSS_SELECTOR, 'input[name="number"][value="+14155550111"]').click()
    browser.find_element(By.CSS_SELECTOR, "#caller-id-form button").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "notice").text == "Default caller ID set.", "not set")
    placed = client(server).place_call("+14155550125", "Ask for the opening hours on Saturday")
    assert client(server).get_call(placed["callId"])["from"] == "+14155550111"
