"""Whole calls over SIP and RTP with the real voice models: the far end (sipp) speaks audio
synthesised by Piper, the runtime's offline agent hears it through faster-whisper and answers
through Piper; the call ends `completed` with the words in the transcript and both sides in the
recording, which the API serves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
from sipp_uas import answer_play
from support import auth, conduct_call, new_account, open_services

from byourside_server.agent.offline import OfflineBrain
from byourside_server.api.app import create_app
from byourside_server.telephony.base import DialRequest, DialResult, Speech
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.telephony import VoicedTelephony
from byourside_server.voice.audio import FRAME_SAMPLES, ulaw_encode
from byourside_server.voice.pipeline import split_sentences
from byourside_server.voice.recorder import read_stereo

pytestmark = pytest.mark.voice

GREETING = "Hello, this is Maria at Sunrise Dental. We are open from nine in the morning until five."


@pytest.fixture(scope="module")
def greeting_ulaw(voice_factory, tmp_path_factory) -> Path:
    """The far end's words, spoken by Piper and stored as the raw mu-law sipp streams."""
    _, tts = asyncio.run(voice_factory.load())
    pcm = asyncio.run(tts.synthesize(GREETING))
    path = tmp_path_factory.mktemp("audio") / "greeting.ulaw"
    path.write_bytes(ulaw_encode(pcm))
    return path


def speech_frames(channel: np.ndarray) -> int:
    """How many 20 ms frames of a channel carry sound (not silence)."""
    usable = len(channel) // FRAME_SAMPLES * FRAME_SAMPLES
    frames = channel[:usable].reshape(-1, FRAME_SAMPLES).astype(np.float64)
    return int((np.sqrt((frames ** 2).mean(axis=1)) > 300).sum())


LONG_REPLY = ("Good morning. I am calling about the appointment you booked last week for a cleaning. "
              "I would like to confirm the time and ask whether the clinic has parking for visitors. "
              "I also want to know whether I should bring my insurance card with me.")


async def test_callee_talking_over_us_stops_our_speech_and_is_heard_whole(sipp, tmp_path, voice_factory,
                                                                          greeting_ulaw):
    far_end = sipp(answer_play(greeting_ulaw, after_ms=5000), echo=False)
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=far_end.uri, bind_host="127.0.0.1")), voice_factory,
                                tmp_path)
    # Rendered before dialling: on a busy machine rendering it after the answer ate into the 5 s before
    # Maria speaks, and a reply whose first audio had not left by then was rightly dropped as stale.
    full = sum([len(await _tts(voice_factory, s)) for s in split_sentences(LONG_REPLY)]) * 1000 // 8000
    try:
        outcome = await telephony.dial(DialRequest("c_hear", "+14155550123", "+14155550100", 5, "en-US", "alloy"))
        assert outcome.result is DialResult.ANSWERED
        line = outcome.line
        spoken = await line.say(LONG_REPLY)  # about 15 s of speech; Maria starts talking 5 s in
        assert line.barged_in
        assert spoken.end_ms - spoken.start_ms < full - 5000
        heard = await line.listen(10)
        assert isinstance(heard, Speech), heard
        words = heard.text.lower()
        assert "maria" in words and "dental" in words, heard.text
        # The pause between Maria's two sentences did not cut her turn.
        assert "five" in words or "5" in words, heard.text
        assert 4500 <= heard.start_ms < heard.end_ms
        await line.hangup()
    finally:
        await telephony.aclose()
    assert far_end.wait(15) == 0, far_end.output()[-1500:]
    callee, agent = read_stereo(Path(line.recording_path()))
    assert speech_frames(callee) >= 100  # Maria's ~5 s on the left
    assert speech_frames(agent) >= 20  # the start of our interrupted reply on the right


async def _tts(voice_factory, text):
    _, tts = await voice_factory.load()
    return await tts.synthesize(text)


async def test_call_through_the_runtime_completes_with_transcript_and_recording(
        sipp, tmp_path, voice_factory, greeting_ulaw):
    far_end = sipp(answer_play(greeting_ulaw), echo=False)  # waits for our BYE
    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path,
                                   poll_seconds=0.05, heartbeat_seconds=0.2)
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=far_end.uri, bind_host="127.0.0.1")), voice_factory,
                                tmp_path / "recordings")
    try:
        account, secret = await new_account(services)
        body = {"to": "+14155550123", "objective": "Ask for the opening hours.", "fields": [{"name": "opening_hours"}]}
        call = await conduct_call(services, account, telephony, OfflineBrain(reply_wait_seconds=1.5), body,
                                  ring_timeout_seconds=5)
        call_id = call.id
        # Maria gives no answer to the question: the agent nudges, gives up politely and hangs up.
        assert call.status.value == "completed", (call.status, call.end_reason)
        assert call.end_reason != "callee_hung_up"
        heard = " ".join(t.text.lower() for t in call.turns if t.speaker == "contact")
        assert "maria" in heard and "dental" in heard, call.turns
        assert any(t.speaker == "agent" for t in call.turns), call.turns
        assert call.recording_path and Path(call.recording_path).is_file()
        callee, agent = read_stereo(Path(call.recording_path))
        assert speech_frames(callee) >= 100 and speech_frames(agent) >= 40

        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            got = await client.get(f"/v1/agent/calls/{call_id}/recording", headers=auth(secret))
            assert got.status_code == 200 and got.headers["content-type"] == "audio/wav"
            assert got.content == Path(call.recording_path).read_bytes()
            denied = await client.get(f"/v1/agent/calls/{call_id}/recording")
            assert denied.status_code == 401
            shown = (await client.get(f"/v1/agent/calls/{call_id}", headers=auth(secret))).json()
            assert f"/v1/agent/calls/{call_id}/recording?expires=" in shown["recordingUrl"]
            signed = shown["recordingUrl"].split("/v1/", 1)[1]
            assert (await client.get(f"/v1/{signed}")).content == got.content  # the signed link needs no key
    finally:
        await telephony.aclose()
        await services.aclose()
    assert far_end.wait(15) == 0, far_end.output()[-1500:]


async def test_the_espeak_fallback_voice_is_understood_over_g711(voice_factory):
    import shutil

    from byourside_server.voice.audio import ulaw_decode
    from byourside_server.voice.espeak import EspeakTTS

    if shutil.which("espeak-ng") is None:
        from support import IN_CI
        message = "espeak-ng is not installed: run `make system-packages` (Debian espeak-ng)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    pcm = await EspeakTTS().synthesize("We have a table for two tonight. The tasting menu is eighty five dollars.")
    stt, _ = await voice_factory.load()
    heard = (await stt.transcribe(ulaw_decode(ulaw_encode(pcm)), 8000)).lower()
    assert "table" in heard and "menu" in heard, heard


async def test_the_turn_is_transcribed_early_during_its_closing_silence(sipp, voice_factory, greeting_ulaw):
    from byourside_server.voice.pipeline import SpeechToText, VoiceConfig, VoiceFactory, make_endpointer

    class CountingSTT(SpeechToText):
        def __init__(self, inner: SpeechToText) -> None:
            self.inner, self.calls = inner, 0

        async def transcribe(self, pcm, sample_rate):  # noqa: ANN001
            self.calls += 1
            return await self.inner.transcribe(pcm, sample_rate)

    whisper, piper = await voice_factory.load()
    stt = CountingSTT(whisper)
    config = VoiceConfig(turn_detector="off")  # the 700 ms silence closes the turn; early STT starts at 200 ms
    voice = VoiceFactory(lambda: stt, lambda: piper, lambda: make_endpointer(config, None), barge_in_ms=0,
                         stt_early_ms=200)
    await voice.load()
    far_end = sipp(answer_play(greeting_ulaw), echo=False)
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=far_end.uri, bind_host="127.0.0.1")), voice)
    try:
        outcome = await telephony.dial(DialRequest("c_early", "+14155550123", "+14155550100", 5, "en-US", "alloy"))
        line = outcome.line
        heard = await line.listen(15)
        assert isinstance(heard, Speech), heard
        assert "maria" in heard.text.lower() and ("five" in heard.text.lower() or "5" in heard.text), heard.text
        # The transcript came from the guess taken during the closing silence, not from a new transcription
        # (a guess taken at the pause between Maria's two sentences was dropped when she went on).
        assert line.early_transcripts_used == 1
        # One guess per pause she went on from (the comma after "Hello" and the pause between her
        # sentences, as the level gate hears them) and the closing one: no transcription of its own.
        assert stt.calls <= 3
        await line.hangup()
    finally:
        await telephony.aclose()
    assert far_end.wait(15) == 0, far_end.output()[-1500:]
