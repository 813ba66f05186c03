"""Webhooks against the real server process: delivery survives a restart; the CLI's secret and listen commands."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.request

import byourside
import pytest
from byourside import verify_webhook
from e2e_server import BIN, _reset_postgres, start_server
from webhook_receiver import Receiver

# First attempt at once, then a retry every half second for a minute; no jitter.
WEBHOOK_ENV = {
    "BYS_WEBHOOK_ALLOW_HTTP": "true",
    "BYS_WEBHOOK_ALLOW_PRIVATE": "true",
    "BYS_WEBHOOK_RETRY_SCHEDULE": ",".join(["0"] + ["0.5"] * 120),
    "BYS_WEBHOOK_RETRY_JITTER": "0",
    "BYS_WEBHOOK_POLL_SECONDS": "0.1",
}


def get_json(server, path: str, key: str) -> dict:
    request = urllib.request.Request(server.base_url + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_delivery_failing_before_a_restart_arrives_after_it(backend, request, tmp_path):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    if url:
        _reset_postgres(url)
    accepting = False
    with Receiver(lambda _req, _nth: 200 if accepting else 500) as receiver:
        first = start_server(tmp_path, url, **WEBHOOK_ENV)
        try:
            key = first.new_key()
            client = byourside.Client(key, base_url=first.base_url)
            call_id = client.place_call("+14155550123", "Ask for the opening hours.", webhook_url=receiver.url())["callId"]
            receiver.wait_until_sync(lambda r: "call.completed" in r.events())
            secret = first.cli("webhooks", "secret", "show", "--account", "default").stdout.strip()
        finally:
            first.stop()  # SIGTERM while the terminal event is still failing
        assert first.process.returncode == 0 and "webhook_delivery_stopped" in first.log()  # a graceful stop
        seen_before_restart = len(receiver.requests)
        accepting = True  # only the restarted server can deliver now
        second = start_server(tmp_path, url, **WEBHOOK_ENV)
        try:
            receiver.wait_until_sync(lambda r: "call.completed" in r.events()[seen_before_restart:])
            deadline = time.monotonic() + 30
            while True:
                events = get_json(second, f"/v1/agent/calls/{call_id}/webhooks", key)["events"]
                if all(e["status"] == "delivered" for e in events) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        finally:
            second.stop()
    terminal = [e for e in events if e["event"] == "call.completed"]
    assert len(terminal) == 1 and terminal[0]["status"] == "delivered"
    attempts = terminal[0]["attempts"]
    assert attempts[0]["httpStatus"] == 500 and attempts[-1]["httpStatus"] == 200
    assert all(a["httpStatus"] == 500 for a in attempts[:-1])
    got = receiver.of_event(terminal[0]["eventId"])
    assert len(got) == len(attempts) >= 2
    assert got[-1].nth > 1 and all(r.json["eventId"] == terminal[0]["eventId"] for r in got)
    assert all(verify_webhook(r.headers["x-bys-signature"], r.raw, secret) for r in got)


def _wait_for_text(path, pattern, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        match = re.search(pattern, text)
        if match:
            return match
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in {path.name}: {path.read_text() if path.exists() else ''}")


def test_listen_verifies_the_servers_signatures_and_secret_rotation(tmp_path):
    server = start_server(tmp_path, None, **WEBHOOK_ENV)
    out, err = tmp_path / "listen.out", tmp_path / "listen.err"
    listener = subprocess.Popen(
        [str(BIN / "byourside"), "webhooks", "listen", "--account", "default", "--port", "0", "--quiet"],
        env=server.env, stdout=open(out, "w"), stderr=open(err, "w"),
    )
    try:
        port = _wait_for_text(err, r"http://127\.0\.0\.1:(\d+)/").group(1)
        client = byourside.Client(server.new_key(), base_url=server.base_url)
        call_id = client.place_call("+14155550123", "Ask for the opening hours.",
                                    webhook_url=f"http://127.0.0.1:{port}/hook")["callId"]
        _wait_for_text(out, rf"call\.completed evt_\w+ call={call_id} status=completed signature=ok")
        assert "INVALID" not in out.read_text()

        before = server.cli("webhooks", "secret", "show", "--account", "default").stdout.strip()
        rotated = server.cli("webhooks", "secret", "rotate", "--account", "default").stdout.strip()
        after = server.cli("webhooks", "secret", "show", "--account", "default")
        assert before.startswith("whsec_") and rotated.startswith("whsec_") and rotated != before
        assert after.stdout.strip() == rotated and "previous secret" in after.stderr
        missing = server.cli("webhooks", "secret", "show", "--account", "nobody", check=False)
        assert missing.returncode == 1 and "Traceback" not in missing.stderr
    finally:
        listener.send_signal(signal.SIGINT)
        listener.wait(timeout=10)
        server.stop()


def test_listen_rejects_a_bad_signature(tmp_path):
    out, err = tmp_path / "listen.out", tmp_path / "listen.err"
    secret = "whsec_local_test_secret"
    listener = subprocess.Popen(
        [str(BIN / "byourside"), "webhooks", "listen", "--secret", secret, "--port", "0"],
        stdout=open(out, "w"), stderr=open(err, "w"),
    )
    try:
        port = _wait_for_text(err, r"http://127\.0\.0\.1:(\d+)/").group(1)
        body = json.dumps({"event": "ping", "eventId": "evt_x"}).encode()
        answers = []
        for signing_secret in (secret, "whsec_someone_else"):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/", data=body,
                headers={"X-BYS-Signature": byourside.sign_webhook(body, signing_secret), "X-BYS-Event": "ping",
                         "X-BYS-Event-Id": "evt_x"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answers.append(response.status)
            except urllib.error.HTTPError as exc:
                answers.append(exc.code)
        assert answers == [200, 401]
        text = _wait_for_text(out, r"signature=INVALID").string
        assert "ping evt_x signature=ok" in text and '"eventId": "evt_x"' in text
    finally:
        listener.send_signal(signal.SIGINT)
        listener.wait(timeout=10)
