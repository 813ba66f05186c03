"""SIP over TCP against a real sipp on loopback (``sipp -t t1``): the sip provider as the caller, and sipp
as the caller of the SIP simulator. No speech models are needed.

The trunk URI's ``;transport=tcp`` selects TCP. Over TCP nothing is retransmitted (RFC 3261 17.1.1.2), so
sipp's message log shows each request exactly once even when the far end takes longer than T1 to answer.
"""

from __future__ import annotations

import asyncio

import pytest
from sipp_uas import (
    SIPP,
    answer_echo,
    challenge_then_answer,
    free_tcp_port,
    reject,
    ring_until_cancel,
    sipp_uac_call,
)
from support import IN_CI
from test_sip_dial import NoModels, dial, far_end_ok, provider, request

from byourside_server.telephony.base import DialResult, HangUp
from byourside_server.telephony.simulator.over_sip import SipSimulator
from byourside_server.telephony.simulator.scenarios import load_scenarios
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.telephony import VoicedTelephony


def sipp_saw(tmp_path) -> str:
    return (tmp_path / "sipp_messages.log").read_text(errors="replace")


async def test_answered_call_over_tcp_sends_dtmf_and_hangs_up_with_bye(sipp, tmp_path):
    far_end = sipp(answer_echo(), transport="tcp")
    outcome, telephony = await dial(far_end, tmp_path)
    try:
        assert outcome.result is DialResult.ANSWERED
        line = outcome.line
        await line.send_digits("7#")  # RTP stays on UDP: sipp echoes the events back
        await asyncio.sleep(0.3)
        assert line.digits_received == ["7", "#"]
        await line.hangup()
    finally:
        await telephony.aclose()
    far_end_ok(far_end)  # sipp got our ACK and our BYE over the connection
    seen = sipp_saw(tmp_path)
    assert "Via: SIP/2.0/TCP 127.0.0.1:" in seen and ";transport=tcp>" in seen, seen[:1500]
    assert seen.count("INVITE sip:+14155550123@127.0.0.1") == 1


async def test_far_end_bye_over_tcp_ends_the_line(sipp, tmp_path):
    far_end = sipp(answer_echo(hold_ms=800), transport="tcp")
    outcome, telephony = await dial(far_end, tmp_path)
    try:
        assert isinstance(await outcome.line.listen(10), HangUp)
    finally:
        await telephony.aclose()
    far_end_ok(far_end)  # sipp's BYE reached us and got our 200


async def test_a_slow_rejection_over_tcp_is_busy_and_the_invite_is_never_retransmitted(sipp, tmp_path):
    far_end = sipp(reject(486, "Busy Here", delay_ms=1700), transport="tcp")  # UDP would resend at 0.5 s, 1.5 s
    outcome, telephony = await dial(far_end, tmp_path)
    await telephony.aclose()
    assert (outcome.result, outcome.line) == (DialResult.BUSY, None)
    far_end_ok(far_end)  # includes our ACK of the 486
    assert sipp_saw(tmp_path).count("INVITE sip:") == 1


async def test_ring_timeout_over_tcp_sends_one_cancel(sipp, tmp_path):
    far_end = sipp(ring_until_cancel(), transport="tcp")
    outcome, telephony = await dial(far_end, tmp_path, ring_timeout=1.0)
    await telephony.aclose()
    assert (outcome.result, outcome.reason) == (DialResult.NO_ANSWER, "ring_timeout")
    far_end_ok(far_end)  # CANCEL arrived, and we ACKed the 487
    assert sipp_saw(tmp_path).count("CANCEL sip:") == 1


async def test_digest_challenge_over_tcp_is_answered(sipp, tmp_path):
    far_end = sipp(challenge_then_answer("trunkuser", "s3cret", status=401), transport="tcp")
    outcome, telephony = await dial(far_end, tmp_path, username="trunkuser", password="s3cret")
    try:
        assert outcome.result is DialResult.ANSWERED
        await outcome.line.hangup()
    finally:
        await telephony.aclose()
    far_end_ok(far_end)  # sipp verified the digest on the second INVITE, on the same connection


async def test_bys_sip_transport_selects_tcp_for_a_plain_trunk_uri(sipp, tmp_path):
    far_end = sipp(reject(603, "Decline"), transport="tcp")
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=f"127.0.0.1:{far_end.port}", transport="TCP",
                                                       bind_host="127.0.0.1")), NoModels())
    try:
        outcome = await telephony.dial(request())
    finally:
        await telephony.aclose()
    assert outcome.result is DialResult.DECLINED
    far_end_ok(far_end)


async def test_a_refused_tcp_connection_fails_at_once_as_unreachable(tmp_path):
    class Nobody:
        uri = f"sip:127.0.0.1:{free_tcp_port()};transport=tcp"

    telephony = provider(Nobody(), tmp_path)
    try:
        outcome = await asyncio.wait_for(telephony.dial(request(ring_timeout=30)), timeout=10)
    finally:
        await telephony.aclose()
    assert (outcome.result, outcome.reason) == (DialResult.FAILED, "sip_unreachable")


def test_sipp_calls_the_simulator_over_tcp(tmp_path):
    """Interop: SIPp's built-in UAC dials the silent line on the simulator's TCP listener, ACKs our 200,
    holds the call 1 s, sends BYE and gets 200."""
    if SIPP is None:
        message = "sipp is not installed: run `make sipp` (Debian package sip-tester)"
        pytest.fail(message) if IN_CI else pytest.skip(message)

    async def run() -> int:
        simulator = await SipSimulator(load_scenarios(), NoModels(), host="127.0.0.1", port=0,
                                       transport="tcp").start()
        try:
            return await sipp_uac_call(simulator.port, "+14155550133", tmp_path, transport="tcp")
        finally:
            await simulator.aclose()

    code = asyncio.run(run())
    errors = tmp_path / "errors.log"
    assert code == 0, errors.read_text() if errors.exists() else code
