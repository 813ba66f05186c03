"""Whole calls through Twilio, scaled out: an API process and a separate worker process on PostgreSQL.

The API (`byourside serve --no-workers`) takes the calls; the worker (`byourside worker`,
BYS_TELEPHONY=twilio) places them through the fake Twilio's REST API and serves the carrier routes on
its own address (BYS_PUBLIC_URL), where the fake's signed status callbacks and Media Streams reach it.
Answered calls are conversations over audio: the fake's callee speaks the simulator's scenario with
Piper and hears the agent with faster-whisper, the worker's voice engine does the same on our side.
"""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import byourside
import httpx
import pytest

from e2e_server import BIN, _reset_postgres, free_port, start_server
from fake_twilio import FakeTwilio, sign
from byourside_server.telephony.simulator.scenarios import load_scenarios

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

# The stock voicemail box, except that it waits as long as the caller's speech models take on a loaded
# machine before hanging up on silence: what is checked is what was heard and left, not how fast the CPU was.
PATIENT_VOICEMAIL = """
numbers:
  "0150": patient_voicemail
scenarios:
  patient_voicemail:
    kind: voicemail
    ring_seconds: 0.5
    voicemail:
      greeting: >-
        Hi, you've reached Chris Morgan. I can't come to the phone right now, please leave a message
        after the tone.
      hang_up_after_silence_seconds: 120
"""


class Deployment:
    def __init__(self, fake: FakeTwilio, server, worker: subprocess.Popen, worker_url: str, worker_log: Path) -> None:
        self.fake, self.server, self.worker, self.worker_url, self.worker_log = fake, server, worker, worker_url, worker_log
        self.key = server.new_key()
        self.client = byourside.Client(self.key, base_url=server.base_url)

    def call(self, to: str, objective: str, timeout: float = 60, **options) -> dict:
        created = self.client.place_call(to, objective, **options)
        try:
            return self.client.wait_for_call(created["callId"], timeout=timeout, interval=0.2)
        except byourside.ByoursideError as exc:
            call = self.client.get_call(created["callId"])
            raise AssertionError(f"{exc}\n{call.get('transcript')}\n{self.logs()[-4000:]}") from None

    def call_with(self, body: dict, timeout: float = 60) -> dict:
        """A call whose request has what the SDK does not send (transferTo)."""
        created = httpx.post(f"{self.server.base_url}/v1/agent/calls", json=body,
                             headers={"Authorization": f"Bearer {self.key}"}, timeout=30)
        assert created.status_code == 201, created.text
        try:
            return self.client.wait_for_call(created.json()["callId"], timeout=timeout, interval=0.2)
        except byourside.ByoursideError as exc:
            call = self.client.get_call(created.json()["callId"])
            raise AssertionError(f"{exc}\n{call.get('transcript')}\n{self.logs()[-4000:]}") from None

    def logs(self) -> str:
        return self.server.log() + self.worker_log.read_text(errors="replace")


def deploy(fake, tmp: Path, postgres_url: str, voice_dir: Path, carrier_env: dict[str, str]) -> Deployment:  # noqa: ANN001
    """An API process and a separate worker process (BYS_TELEPHONY from ``carrier_env``) on PostgreSQL; the worker
    serves the carrier routes on its own port, named by its BYS_PUBLIC_URL."""
    _reset_postgres(postgres_url)
    server = start_server(tmp / "api", postgres_url, "--no-workers")
    port = free_port()
    worker_url = f"http://127.0.0.1:{port}"
    env = {**server.env, "BYS_DATA_DIR": str(tmp / "worker"), "BYS_PORT": str(port), "BYS_PUBLIC_URL": worker_url,
           "BYS_RING_TIMEOUT_SECONDS": "6", "BYS_MODEL_CACHE_DIR": str(voice_dir / "models"),
           # One transcription per turn: on a loaded machine the CPU goes to the conversation, not to latency.
           "BYS_STT_EARLY_MS": "0", "BYS_TURN_SPECULATE": "false", **carrier_env}
    (tmp / "worker").mkdir()
    worker_log = tmp / "worker.log"
    worker = subprocess.Popen([str(BIN / "byourside"), "worker"], env=env, stdout=worker_log.open("w"),
                              stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120  # a safety net for a loaded machine, not a speed requirement
    while time.monotonic() < deadline and worker.poll() is None:
        try:
            with urllib.request.urlopen(f"{worker_url}/healthz", timeout=1):
                return Deployment(fake, server, worker, worker_url, worker_log)
        except OSError:
            time.sleep(0.1)
    worker.kill()
    server.stop()
    raise AssertionError(f"the worker did not start:\n{worker_log.read_text()}")


def undeploy(deployment: Deployment) -> None:
    deployment.worker.send_signal(signal.SIGTERM)
    try:
        deployment.worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        deployment.worker.kill()
    deployment.server.stop()


@pytest.fixture(scope="module")
def deployment(postgres_url, voice_factory, voice_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("twilio-e2e")
    (tmp / "scenarios.yaml").write_text(PATIENT_VOICEMAIL)
    fake = FakeTwilio(load_scenarios(tmp / "scenarios.yaml"), voice_factory, numbers=("+14155550100",)).start_in_thread()
    try:
        running = deploy(fake, tmp, postgres_url, voice_dir, {
            "BYS_TELEPHONY": "twilio", "BYS_TWILIO_ACCOUNT_SID": fake.account_sid,
            "BYS_TWILIO_AUTH_TOKEN": fake.auth_token, "BYS_TWILIO_API_URL": fake.api_url})
    except BaseException:
        fake.stop_thread()
        raise
    yield running
    undeploy(running)
    fake.stop_thread()


@pytest.mark.parametrize(("number", "status", "end_reason"), [
    ("+14155550161", "no_answer", "busy"),
    ("+14155550162", "declined", "declined"),
    ("+14155550163", "failed", "error:sip_503"),
    ("+14155550160", "no_answer", "no_answer"),  # rings until Twilio's Timeout (the ring timeout)
])
def test_calls_that_are_not_answered(deployment, number, status, end_reason):
    call = deployment.call(number, "Ask for the opening hours.")
    assert (call["status"], call["endReason"]) == (status, end_reason), call
    assert call["transcript"] in ("", None) and call["recordingUrl"] is None


@pytest.mark.voice
def test_the_demo_restaurant_call_completes_over_audio(deployment):
    fields = [{"name": "table_available", "type": "boolean", "description": "whether a table for two is free tonight"},
              {"name": "tasting_menu_price", "type": "number", "description": "the tasting menu's price per person"}]
    call = deployment.call("+14155550123", "Ask whether they have a table for two tonight and how much the tasting "
                           "menu costs.", timeout=300, fields=fields)
    assert call["status"] == "completed", (call, deployment.logs()[-3000:])
    assert "copper pot" in call["transcript"].lower(), call["transcript"]  # Sofia's greeting, heard as audio
    assert call["extracted"] == {"table_available": True, "tasting_menu_price": 85}, call["transcript"]
    deployment.fake.wait_for_calls_to_end(60)
    (twilio_call,) = [c for c in deployment.fake.calls.values() if c.to == "+14155550123"]
    assert any("table" in said.lower() for said in twilio_call.callee.heard), twilio_call.callee.heard
    assert twilio_call.statuses_sent[-1] == "completed"
    with urllib.request.urlopen(call["recordingUrl"], timeout=10) as response:  # our stereo WAV, not the carrier's
        assert response.headers["Content-Type"] == "audio/wav" and len(response.read()) > 8000


@pytest.mark.voice
def test_a_voicemail_box_is_detected_and_the_message_left(deployment):
    call = deployment.call("+14155550150", "Confirm the appointment for Tuesday.", timeout=300,
                           voicemail_message="Hi Chris, this is the dental office. Please call us back.")
    assert (call["status"], call["endReason"]) == ("voicemail", "voicemail"), call
    assert "chris morgan" in call["transcript"].lower(), call["transcript"]


@pytest.mark.voice
def test_the_callee_asks_for_a_person_and_is_transferred_warm(deployment):
    call = deployment.call_with({"to": "+14155550134", "objective": "Ask when the policy renewal is due.",
                                 "transferTo": ["+14155550100"], "transferMode": "warm"}, timeout=300)
    assert (call["status"], call["endReason"]) == ("completed", "transferred"), (call, deployment.logs()[-3000:])
    assert "person" in call["transcript"].lower() or "human" in call["transcript"].lower(), call["transcript"]
    # The agent's last words hand the call over (the callee may have said something over them, transcribed after).
    agent_turns = [turn["text"] for turn in call["turns"] if turn["speaker"] == "agent"]
    assert "connect you" in agent_turns[-1], call["turns"]
    deployment.fake.wait_for_calls_to_end(60)
    (twilio_call,) = [c for c in deployment.fake.calls.values() if c.to == "+14155550134"]
    (transfer,) = twilio_call.transfers
    assert (transfer.to, transfer.caller_id, transfer.status) == ("+14155550100", "+14155550100", "connected")
    assert transfer.whisper_audio[:4] == b"RIFF" and len(transfer.whisper_audio) > 8000  # the brief, in our voice
    assert not twilio_call.end_requested.is_set()  # the worker's hang-up left the call to the person
    assert twilio_call.statuses_sent[-1] == "completed"


def test_a_forged_callback_is_refused_and_changes_nothing(deployment):
    url = f"{deployment.worker_url}/carriers/twilio/status/some-token"
    params = [("CallSid", "CA" + "1" * 32), ("CallStatus", "completed")]
    forged = httpx.post(url, data=dict(params), headers={"X-Twilio-Signature": sign("a-guessed-token", url, params)})
    unsigned = httpx.post(url, data=dict(params))
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert forged.json()["error"] == "forbidden"
    genuine = httpx.post(url, data=dict(params), headers={"X-Twilio-Signature": sign(deployment.fake.auth_token, url,
                                                                                        params)})
    assert genuine.status_code == 204  # signed right, for no call of ours: accepted and ignored


def test_numbers_never_reach_the_logs(deployment):
    logs = deployment.logs()
    assert "twilio_call_created" in logs
    for number in ("+14155550123", "+14155550161", "+14155550100", "4155550123"):
        assert number not in logs
