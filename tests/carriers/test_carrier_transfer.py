"""Transfer to a person through the carriers' own transfer, against the fake Twilio and the fake Telnyx, and
the carriers' answering-machine verdicts reaching the voice engine's line (no speech models needed).

Twilio: the live call's TwiML is replaced with ``<Dial action>`` (Update a Call resource); the Number's
``url`` (the whisper) is the person's answer, and warm transfers whisper the brief through it; a dial nobody
takes brings the callee back on a new Media Stream through the action. Telnyx: ``actions/transfer``, warm with ``audio_url``; a new leg
that is not answered leaves the call ours.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from test_telnyx_provider import request, telnyx  # noqa: F401 - fixtures
from test_twilio_provider import NoModels, rig  # noqa: F401 - fixtures

from byourside_server.domain import AnsweredBy, AnswerVerdict
from byourside_server.telephony.base import DialResult, TransferFailed
from byourside_server.telephony.media import MediaChannel
from byourside_server.voice.engine import VoiceLine

RECEPTIONIST, BUSY, SILENT = "+14155550100", "+14155550161", "+14155550133"
NOBODY, BROKEN = "+14155550160", "+14155550163"  # rings out; a carrier failure
BRIEF = "Robin wants a person about the policy renewal."
BRIEF_AUDIO = (2000 * np.sin(2 * np.pi * 300 * np.arange(4000) / 8000)).astype(np.int16)  # half a second


async def _ended(transfer) -> None:
    await asyncio.wait_for(transfer.done.wait(), 10)


# Twilio
async def test_twilio_cold_transfer_dials_the_person_and_leaves_the_call_to_them(rig):  # noqa: F811
    outcome = await rig.dial(SILENT)
    media = outcome.media
    await media.transfer(RECEPTIONIST)
    assert media.ended.is_set() and media.transferred
    call = rig.only_call()
    (transfer,) = call.transfers
    await _ended(transfer)
    assert (transfer.to, transfer.caller_id, transfer.status) == (RECEPTIONIST, "+14155550100", "connected")
    assert transfer.whisper_url.startswith(rig.provider.base + "/whisper/") and transfer.whisper_said is None
    await media.hangup()  # the runtime's hang-up after the conversation: the call is the person's now
    await asyncio.wait_for(call.ended.wait(), 10)
    assert not call.end_requested.is_set()  # no Status=completed was sent
    assert call.statuses_sent[-1] == "completed"
    # the action after the person's conversation ends the call; the callee never came back to us
    assert "<Hangup/>" in transfer.action_answer and not transfer.came_back
    assert call.media.streams == call.media.streams[:1]


@pytest.mark.parametrize(("number", "reason"), [(BUSY, "busy"), (NOBODY, "no_answer"), (BROKEN, "failed")])
async def test_twilio_a_person_who_does_not_answer_brings_the_callee_back(rig, number, reason):  # noqa: F811
    outcome = await rig.dial(SILENT)
    media = outcome.media
    call = rig.only_call()
    first_stream = call.media.stream_sid
    with pytest.raises(TransferFailed) as failed:
        await media.transfer(number, BRIEF, BRIEF_AUDIO)
    assert failed.value.reason == reason
    assert not media.ended.is_set() and not media.transferred
    (transfer,) = call.transfers
    assert transfer.came_back and "<Connect><Stream" in transfer.action_answer
    assert transfer.whisper_audio is None  # nobody answered: nothing was whispered
    assert call.media.stream_sid != first_stream and len(call.media.streams) == 2
    # the conversation goes on over the new stream: our audio reaches the callee, its marks come back
    media.play(BRIEF_AUDIO)
    assert await asyncio.wait_for(media.mark(), 10) is True
    assert call.media.marks_echoed
    await media.hangup()  # an ordinary end: the call is ours
    await asyncio.wait_for(call.ended.wait(), 10)
    assert call.end_requested.is_set() and call.statuses_sent[-1] == "completed"


async def test_twilio_after_a_busy_person_the_next_number_takes_the_call(rig):  # noqa: F811
    outcome = await rig.dial(SILENT)
    media = outcome.media
    with pytest.raises(TransferFailed):
        await media.transfer(BUSY)
    await media.transfer(RECEPTIONIST)
    assert media.ended.is_set() and media.transferred
    call = rig.only_call()
    assert [t.status for t in call.transfers] == ["busy", "connected"]
    await media.hangup()
    await asyncio.wait_for(call.ended.wait(), 10)
    assert not call.end_requested.is_set()


async def test_a_forged_dial_action_is_refused(rig):  # noqa: F811
    import httpx

    url = rig.provider.base + "/dialed/some-token"
    params = {"CallSid": "CA" + "1" * 32, "DialCallStatus": "busy", "CallStatus": "in-progress"}
    async with httpx.AsyncClient() as client:
        forged = await client.post(url, data=params, headers={"X-Twilio-Signature": "forged"})
        unsigned = await client.post(url, data=params)
    assert (forged.status_code, unsigned.status_code) == (403, 403)


async def test_twilio_warm_transfer_whispers_the_brief_in_our_voice(rig):  # noqa: F811
    outcome = await rig.dial(SILENT)
    await outcome.media.transfer(RECEPTIONIST, BRIEF, BRIEF_AUDIO)
    (transfer,) = rig.only_call().transfers
    await _ended(transfer)
    assert transfer.whisper_url.startswith(rig.provider.base + "/whisper/")
    assert transfer.whisper_audio[:4] == b"RIFF" and len(transfer.whisper_audio) == 44 + 2 * len(BRIEF_AUDIO)
    assert transfer.status == "connected"
    await outcome.media.hangup()


async def test_twilio_warm_transfer_without_audio_says_the_brief(rig):  # noqa: F811
    outcome = await rig.dial(SILENT)
    await outcome.media.transfer(RECEPTIONIST, BRIEF)
    (transfer,) = rig.only_call().transfers
    await _ended(transfer)
    assert transfer.whisper_said == BRIEF and transfer.whisper_audio is None
    await outcome.media.hangup()


async def test_twilio_refusing_the_transfer_keeps_the_call_ours(rig):  # noqa: F811
    outcome = await rig.dial(SILENT)
    call = rig.only_call()
    call.status = "completed"  # Twilio answers 21220 for a call that is not in progress
    with pytest.raises(TransferFailed) as failed:
        await outcome.media.transfer(RECEPTIONIST)
    assert failed.value.reason == "twilio_21220"
    assert not outcome.media.ended.is_set() and not outcome.media.transferred
    call.status = "in-progress"
    await outcome.media.hangup()
    await asyncio.wait_for(call.ended.wait(), 10)
    assert call.end_requested.is_set()  # an ordinary hang-up again


async def test_a_forged_whisper_request_is_refused(rig):  # noqa: F811
    import httpx

    url = rig.provider.base + "/whisper/some-token"
    async with httpx.AsyncClient() as client:
        answer = await client.post(url, data={"CallSid": "CA" + "1" * 32}, headers={"X-Twilio-Signature": "forged"})
    assert answer.status_code == 403


# Telnyx
async def test_telnyx_transfer_bridges_the_person_and_leaves_the_call_to_them(telnyx):  # noqa: F811
    fake, provider = telnyx
    outcome = await provider.dial(request(SILENT))
    assert outcome.result is DialResult.ANSWERED
    await outcome.media.transfer(RECEPTIONIST, BRIEF, BRIEF_AUDIO)
    (call,) = fake.calls.values()
    (transfer,) = call.transfers
    await _ended(transfer)
    assert (transfer.to, transfer.caller_id, transfer.status) == (RECEPTIONIST, "+14155550100", "connected")
    assert transfer.whisper_url.startswith(provider.base + "/brief/") and transfer.whisper_audio[:4] == b"RIFF"
    await outcome.media.hangup()
    await asyncio.wait_for(call.ended.wait(), 10)
    assert not call.end_requested.is_set()


async def test_telnyx_transfer_nobody_answers_and_the_call_stays_ours(telnyx):  # noqa: F811
    _, provider = telnyx
    outcome = await provider.dial(request(SILENT))
    with pytest.raises(TransferFailed) as failed:
        await outcome.media.transfer(BUSY)
    assert failed.value.reason == "busy"
    assert not outcome.media.ended.is_set()
    await outcome.media.transfer(RECEPTIONIST)  # the next number on the list
    assert outcome.media.ended.is_set()
    await outcome.media.hangup()


# a carrier's answering-machine verdict reaches the voice engine's line
class QuietMedia(MediaChannel):
    """A channel that carries nothing but a carrier's verdict."""

    def __init__(self, verdict: AnswerVerdict | None) -> None:
        super().__init__()
        self.verdict = verdict

    async def events(self):
        await self.ended.wait()
        return
        yield

    def play(self, pcm):
        raise AssertionError("not played")

    def clear(self) -> None: ...

    def mark(self):
        raise AssertionError("not marked")

    async def send_digits(self, digits: str) -> None: ...

    async def hangup(self) -> None:
        self._mark_ended(by_far_end=False)

    def elapsed_ms(self) -> int:
        return 0

    def answered_by(self) -> AnswerVerdict | None:
        return self.verdict


@pytest.mark.parametrize("carrier", [AnswerVerdict(AnsweredBy.MACHINE, {"source": "carrier", "carrier": "twilio",
                                                                        "answeredBy": "machine_end_beep"}), None])
async def test_the_voice_line_reports_the_carriers_verdict_when_there_is_one(carrier):
    line = VoiceLine(QuietMedia(carrier), NoModels(), "call-amd")
    try:
        assert line.answered_by() == carrier  # None: no carrier verdict, and no cadence verdict yet
    finally:
        await line.hangup()
