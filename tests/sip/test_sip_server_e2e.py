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
