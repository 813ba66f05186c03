"""The real `byourside serve` process with BYS_TELEPHONY=sip, driven by the SDK, dialling sipp."""

from __future__ import annotations

import byourside
import pytest

from e2e_server import start_server
from sipp_uas import reject

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("code", "reason", "status", "end_reason"), [
    (603, "Decline", "declined", "declined"),
    (486, "Busy Here", "no_answer", "busy"),
])
def test_server_places_calls_over_sip(sipp, tmp_path, code, reason, status, end_reason):
    far_end = sipp(reject(code, reason))
    server = start_server(tmp_path / "server", None, BYS_TELEPHONY="sip", BYS_SIP_TRUNK_URI=far_end.uri,
                          BYS_SIP_BIND_HOST="127.0.0.1")
    try:
        client = byourside.Client(server.new_key(), base_url=server.base_url)
        created = client.place_call("+14155550123", "Ask for the opening hours.")
        call = client.wait_for_call(created["callId"], timeout=30, interval=0.1)
        assert (call["status"], call["endReason"]) == (status, end_reason)
        assert call["recordingUrl"] is None
    finally:
        server.stop()
    assert far_end.wait(15) == 0, far_end.output()[-1500:]
    log = server.log()
    assert "+14155550123" not in log  # numbers never reach log text


def start_sip_simulator(data_dir, env):
    """`byourside sip-sim` as its own process; returns it and its SIP URI once it listens."""
    import subprocess
    import time

    from e2e_server import BIN
    from sipp_uas import free_udp_port

    port = free_udp_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "sip-sim.log"
    process = subprocess.Popen([str(BIN / "byourside"), "sip-sim", "--sip-port", str(port)], env=env,
                               stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120  # loading the speech models; a safety net, not a speed requirement
    while time.monotonic() < deadline:
        if "listening" in log_path.read_text(errors="replace"):
            return process, f"sip:127.0.0.1:{port}", log_path
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"sip-sim did not start:\n{log_path.read_text(errors='replace')}")


# The stock voicemail box, except that it waits as long as the caller's speech models take on a loaded machine
# before hanging up on silence: what is checked is what was heard and left, not how fast the CPU was.
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


@pytest.mark.voice
def test_server_calls_the_sip_simulator_process_and_leaves_a_voicemail(tmp_path):
    import urllib.request

    from e2e_server import server_env

    (tmp_path / "scenarios.yaml").write_text(PATIENT_VOICEMAIL)
    sim_env = server_env(tmp_path / "sim", None, 0, BYS_DATA_DIR=str(tmp_path / "models"),
                         BYS_SIM_SCENARIOS_FILE=str(tmp_path / "scenarios.yaml"))
    simulator, uri, sim_log = start_sip_simulator(tmp_path / "sim", sim_env)
    server = start_server(tmp_path / "server", None, BYS_TELEPHONY="sip", BYS_SIP_TRUNK_URI=uri,
                          BYS_SIP_BIND_HOST="127.0.0.1", BYS_MODEL_CACHE_DIR=str(tmp_path / "models" / "models"))
    try:
        key = server.new_key()
        client = byourside.Client(key, base_url=server.base_url)
        created = client.place_call("+14155550150", "Confirm the appointment for Tuesday.",
                                    voicemail_message="Hi Chris, this is the dental office. Please call us back.")
        call = client.wait_for_call(created["callId"], timeout=240, interval=0.5)
        assert (call["status"], call["endReason"]) == ("voicemail", "voicemail"), call
        assert "chris morgan" in call["transcript"].lower(), call["transcript"]  # the greeting, heard as audio
        request = urllib.request.Request(call["recordingUrl"], headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"] == "audio/wav" and len(response.read()) > 8000
    finally:
        server.stop()
        simulator.terminate()
        simulator.wait(timeout=20)
    assert "+14155550150" not in server.log() + sim_log.read_text()  # numbers never reach log text
