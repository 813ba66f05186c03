"""The sip provider against a real sipp far end on loopback: dial outcomes, auth, CANCEL, BYE, DTMF.

These tests need no speech models: nothing is spoken or transcribed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from sipp_uas import (
    answer_echo,
    challenge_then_answer,
    free_udp_port,
    reject,
    ring_until_cancel,
)

from byourside_server.telephony.base import (
    Beep,
    CalleeHungUp,
    DialRequest,
    DialResult,
    HangUp,
)
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.telephony import VoicedTelephony
from byourside_server.voice.pipeline import VoiceFactory
from byourside_server.voice.vad import Endpointer


class NoModels(VoiceFactory):
    """A voice factory for calls that never speak or transcribe: loading fails (the provider's warm-up
    while ringing only logs that), so any say/listen that needs a model fails the test."""

    def __init__(self) -> None:
        super().__init__(stt=self._fail, tts=self._fail, endpointer=lambda: Endpointer(lambda frame: False))

    @staticmethod
    def _fail():
        raise AssertionError("this test must not need speech models")


def provider(far_end, tmp_path: Path, **config) -> SipTelephony:
    cfg = SipConfig(trunk_uri=far_end.uri, bind_host="127.0.0.1", **config)
    return VoicedTelephony(SipTelephony(cfg), NoModels(), recordings_dir=tmp_path / "recordings")


def request(ring_timeout: float = 5.0) -> DialRequest:
    return DialRequest("call_test", "+14155550123", "+14155550100", ring_timeout, "en-US", "alloy")


async def dial(far_end, tmp_path, ring_timeout: float = 5.0, **config):
    telephony = provider(far_end, tmp_path, **config)
    try:
        return await telephony.dial(request(ring_timeout)), telephony
    except BaseException:
        await telephony.aclose()
        raise


def far_end_ok(far_end) -> None:
    """sipp went through its whole scenario (every expected request arrived)."""
    code = far_end.wait(15)
    assert code == 0, far_end.output()[-2000:]


@pytest.mark.parametrize(
    ("code", "reason", "result"),
    [
        (486, "Busy Here", DialResult.BUSY),
        (600, "Busy Everywhere", DialResult.DECLINED),
        (603, "Decline", DialResult.DECLINED),
        (480, "Temporarily Unavailable", DialResult.NO_ANSWER),
        (503, "Service Unavailable", DialResult.FAILED),
        (404, "Not Found", DialResult.FAILED),
    ],
)
async def test_final_responses_map_to_dial_results(sipp, tmp_path, code, reason, result):
    far_end = sipp(reject(code, reason))
    outcome, telephony = await dial(far_end, tmp_path)
    await telephony.aclose()
    assert outcome.result is result
    assert outcome.line is None
    if code == 503:
        assert outcome.reason == "sip_503"
    if code == 404:
        assert outcome.reason == "invalid_number"
    far_end_ok(far_end)  # includes our ACK of the final response


async def test_ring_timeout_cancels_and_is_no_answer(sipp, tmp_path):
    far_end = sipp(ring_until_cancel())
    outcome, telephony = await dial(far_end, tmp_path, ring_timeout=1.0)
    await telephony.aclose()
    assert outcome.result is DialResult.NO_ANSWER
    assert outcome.reason == "ring_timeout"
    far_end_ok(far_end)  # CANCEL arrived, and we ACKed the 487


async def test_cancelling_the_dial_task_sends_cancel(sipp, tmp_path):
    far_end = sipp(ring_until_cancel())
    telephony = provider(far_end, tmp_path)
    task = asyncio.create_task(telephony.dial(request(ring_timeout=30)))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await telephony.aclose()
    far_end_ok(far_end)


async def test_answered_call_sends_dtmf_and_hangs_up_with_bye(sipp, tmp_path):
    far_end = sipp(answer_echo())  # sipp echoes our RTP back, telephone-events included
    outcome, telephony = await dial(far_end, tmp_path)
    try:
        assert outcome.result is DialResult.ANSWERED
        line = outcome.line
        await line.send_digits("12*9#")
        for _ in range(100):  # the echo of the last digit's end packets (a safety net, not a speed check)
            if len(line.digits_received) >= 5:
                break
            await asyncio.sleep(0.05)
        assert line.digits_received == list("12*9#")
        assert line.elapsed_ms() > 0
        await line.hangup()
        await line.hangup()  # idempotent
    finally:
        await telephony.aclose()
    far_end_ok(far_end)  # sipp received our BYE and answered it


async def test_far_end_bye_ends_the_line(sipp, tmp_path):
    far_end = sipp(answer_echo(hold_ms=800))
    outcome, telephony = await dial(far_end, tmp_path)
    try:
        line = outcome.line
        event = await line.listen(10)
        assert isinstance(event, HangUp)
        assert isinstance(await line.listen(1), HangUp)
        with pytest.raises(CalleeHungUp):
            await line.say("Are you still there?")
        await line.hangup()  # no BYE goes out for a dialog the far end ended
    finally:
        await telephony.aclose()
    far_end_ok(far_end)


async def test_digest_challenge_is_answered(sipp, tmp_path):
    far_end = sipp(challenge_then_answer("trunkuser", "s3cret", status=401))  # sipp verifies the digest
    outcome, telephony = await dial(far_end, tmp_path, username="trunkuser", password="s3cret")
    try:
        assert outcome.result is DialResult.ANSWERED
        await outcome.line.hangup()
    finally:
        await telephony.aclose()
    far_end_ok(far_end)


async def test_wrong_password_fails_with_auth_reason(sipp, tmp_path):
    far_end = sipp(challenge_then_answer("trunkuser", "s3cret", status=401))
    outcome, telephony = await dial(far_end, tmp_path, username="trunkuser", password="wrong")
    await telephony.aclose()
    assert outcome.result is DialResult.FAILED
    assert outcome.reason == "sip_auth"


async def test_proxy_challenge_without_credentials_fails(sipp, tmp_path):
    far_end = sipp(challenge_then_answer("trunkuser", "s3cret", status=407))
    outcome, telephony = await dial(far_end, tmp_path)
    await telephony.aclose()
    assert (outcome.result, outcome.reason) == (DialResult.FAILED, "sip_auth")


async def test_outbound_proxy_caller_id_and_asserted_identity(sipp, tmp_path):
    far_end = sipp(reject(486, "Busy Here"))
    # The trunk's name does not resolve: only the outbound proxy (sipp) can receive the INVITE.
    cfg = SipConfig(trunk_uri="sip:trunk.invalid", outbound_proxy=f"127.0.0.1:{far_end.port}",
                    bind_host="127.0.0.1", asserted_identity=True)
    telephony = VoicedTelephony(SipTelephony(cfg), NoModels())
    outcome = await telephony.dial(request())
    await telephony.aclose()
    assert outcome.result is DialResult.BUSY
    far_end_ok(far_end)
    seen = (tmp_path / "sipp_messages.log").read_text()
    assert "INVITE sip:+14155550123@trunk.invalid SIP/2.0" in seen
    assert "From: <sip:+14155550100@trunk.invalid>;tag=" in seen
    assert "P-Asserted-Identity: <sip:+14155550100@trunk.invalid>" in seen


async def test_a_trunk_that_never_responds_is_a_failure_not_no_answer(tmp_path):
    class Silent:
        uri = f"sip:127.0.0.1:{free_udp_port()}"

    outcome, telephony = await dial(Silent(), tmp_path, ring_timeout=1.0)
    await telephony.aclose()
    assert (outcome.result, outcome.reason) == (DialResult.FAILED, "sip_timeout")


async def test_a_record_tone_from_the_far_end_is_a_beep(sipp, tmp_path):
    far_end = sipp(answer_echo())  # the echo brings our tone back as the far end's audio
    outcome, telephony = await dial(far_end, tmp_path)
    try:
        line = outcome.line
        t = np.arange(int(0.4 * 8000)) / 8000
        await line.media.play((8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16))
        event = await line.listen(5)
        assert isinstance(event, Beep), event
        assert event.at_ms > 0
        await line.hangup()
    finally:
        await telephony.aclose()
    far_end_ok(far_end)
