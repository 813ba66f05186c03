"""Deepgram live STT (voice/providers/deepgram.py) against our fake of its streaming WebSocket protocol."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from fake_deepgram import FakeDeepgram
from paced_media import silence as quiet
from paced_media import voiced
from scripted_media import ScriptedMedia
from support import conduct_call, new_account, open_services

from byourside_server.agent.offline import OfflineBrain
from byourside_server.telephony.base import Silence, Speech
from byourside_server.telephony.simulator.over_sip import SipSimulator
from byourside_server.telephony.simulator.scenarios import load_scenarios
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.audio import FRAME_MS, FRAME_SAMPLES
from byourside_server.voice.engine import VoiceLine
from byourside_server.voice.factory import (
    VoiceConfig,
    VoiceFactory,
    deepgram_stt,
    local_voice,
    make_endpointer,
)
from byourside_server.voice.listening import BatchRecognition, ToneHeard
from byourside_server.voice.ports import (
    FinalText,
    InterimText,
    SpeechEnded,
    SpeechStarted,
    SpeechToText,
    TextToSpeech,
)
from byourside_server.voice.providers.deepgram import (
    DeepgramError,
    DeepgramOptions,
    DeepgramRecognition,
    DeepgramSTT,
)
from byourside_server.voice.recorder import read_stereo
from byourside_server.voice.telephony import VoicedTelephony
from byourside_server.voice.tones import BeepDetector

TABLE = "We have a table for two tonight."
MENU = "The tasting menu is eighty five dollars per person, wine not included."


def silence(ms: int) -> list[np.ndarray]:
    return [np.zeros(FRAME_SAMPLES, dtype=np.int16) for _ in range(ms // FRAME_MS)]


def speech(ms: int) -> list[np.ndarray]:
    """A voiced buzz, loud enough to be speech to the fake's energy detector."""
    t = np.arange(ms * 8) / 8000
    pcm = (4000 * np.sign(np.sin(2 * np.pi * 150 * t))).astype(np.int16)
    return list(pcm.reshape(-1, FRAME_SAMPLES))


def tone(ms: int, hz: float = 1000) -> list[np.ndarray]:
    t = np.arange(ms * 8) / 8000
    return list((6000 * np.sin(2 * np.pi * hz * t)).astype(np.int16).reshape(-1, FRAME_SAMPLES))


def recognition(fake: FakeDeepgram, *, tones: bool = False, key: str = "dg-test", guess_after_ms: int = 0,
                **options) -> DeepgramRecognition:
    endpointer = make_endpointer(VoiceConfig(turn_detector="off"), None)
    return DeepgramRecognition(DeepgramOptions(key, url=fake.url, **options), endpointer,
                               tones=BeepDetector() if tones else None, guess_after_ms=guess_after_ms)


async def feed(stream: DeepgramRecognition, frames: list[np.ndarray], start_ms: int = 0, pace: float = 0.0) -> int:
    """Frames on the media timeline from ``start_ms``; returns the timeline after them."""
    at = start_ms
    for frame in frames:
        stream.feed(frame, at)
        at += FRAME_MS
        await asyncio.sleep(pace)
    return at


async def events_until(stream: DeepgramRecognition, count_finals: int, timeout: float = 20.0) -> list:
    events, finals = [], 0
    async with asyncio.timeout(timeout):
        while finals < count_finals:
            event = await stream.next_event(timeout)
            events.append(event)
            finals += isinstance(event, FinalText)
    return events


async def test_a_turn_is_heard_as_started_interim_ended_and_final_on_the_media_timeline():
    fake = await FakeDeepgram(script=[TABLE]).start()
    stream = recognition(fake)
    try:
        await feed(stream, silence(500) + speech(1500) + silence(600))
        events = await events_until(stream, 1)
        await stream.aclose()
    finally:
        await fake.aclose()
    kinds = [type(e) for e in events]
    assert kinds[0] is SpeechStarted and kinds[-2:] == [SpeechEnded, FinalText], kinds
    assert abs(events[0].at_ms - 500) <= 40
    interims = [e for e in events if isinstance(e, InterimText)]
    assert interims and interims[0].text == "We" and all(TABLE.startswith(i.text) for i in interims)
    final = events[-1]
    assert final.text == TABLE and final.stt_ms == 0
    assert abs(final.start_ms - 500) <= 40 and abs(final.end_ms - 2000) <= 40  # the words, on our timeline
    assert events[-2].start_ms == final.start_ms and events[-2].end_ms == final.end_ms
    assert final.decided_ms >= final.end_ms
    [socket] = fake.sockets
    assert socket["query"] == {"model": "nova-3", "language": "en", "encoding": "mulaw", "sample_rate": "8000",
                               "channels": "1", "smart_format": "true", "interim_results": "true",
                               "endpointing": "300", "utterance_end_ms": "1000", "vad_events": "true"}
    assert socket["controls"] == ["CloseStream"] and socket["sent"][-1]["type"] == "Metadata"
    assert abs(socket["audio_seconds"] - 2.6) < 0.03  # every frame went up, as 8 kHz mu-law
    assert stream.connections == 1


async def test_a_wait_that_is_given_up_takes_no_event():
    fake = await FakeDeepgram(script=[TABLE]).start()
    stream = recognition(fake)
    try:
        assert await stream.next_event(0.01) is None
        given_up = asyncio.ensure_future(stream.next_event())  # as the engine gives up a wait at hang-up
        await asyncio.sleep(0.01)
        given_up.cancel()
        await feed(stream, silence(200) + speech(1000) + silence(600))
        events = await events_until(stream, 1)
        await stream.aclose()
    finally:
        await fake.aclose()
    assert isinstance(events[0], SpeechStarted) and events[-1].text == TABLE


async def test_finals_of_one_turn_are_joined_and_utterance_end_closes_a_turn_without_speech_final():
    fake = await FakeDeepgram(script=[MENU], speech_final=False).start()  # a noisy line: no speech_final
    stream = recognition(fake, encoding="linear16")
    try:
        await feed(stream, silence(200) + speech(2500) + silence(1600))
        events = await events_until(stream, 1)
        await stream.aclose()
    finally:
        await fake.aclose()
    finals = [m for m in fake.sockets[0]["sent"] if m["type"] == "Results" and m["is_final"]]
    assert len(finals) == 2 and not any(m["speech_final"] for m in finals)  # two pieces, neither closing it
    assert any(m["type"] == "UtteranceEnd" for m in fake.sockets[0]["sent"])
    assert events[-1].text == MENU
    assert fake.sockets[0]["query"]["encoding"] == "linear16"


async def test_finish_finalizes_the_turn_in_progress():
    fake = await FakeDeepgram(script=[TABLE]).start()
    stream = recognition(fake)
    try:
        at = await feed(stream, silence(200) + speech(1200))
        stream.finish(at)  # the line closed mid-sentence
        events = await events_until(stream, 1)
        await stream.aclose()
    finally:
        await fake.aclose()
    assert events[-1].text == TABLE
    assert fake.sockets[0]["controls"][:1] == ["Finalize"]
    assert any(m.get("from_finalize") for m in fake.sockets[0]["sent"])


async def test_keepalive_holds_the_socket_while_no_audio_flows():
    fake = await FakeDeepgram(script=[TABLE], idle_timeout=0.6).start()  # the service's 10 s, shortened
    stream = recognition(fake, keepalive_seconds=0.15)
    try:
        await feed(stream, silence(100))
        await asyncio.sleep(1.5)  # no audio: the media paused
        await feed(stream, speech(1000) + silence(500), start_ms=100)
        events = await events_until(stream, 1)
        await stream.aclose()
    finally:
        await fake.aclose()
    assert events[-1].text == TABLE
    assert stream.connections == 1 and len(fake.sockets) == 1  # never timed out
    assert fake.sockets[0]["controls"].count("KeepAlive") >= 3


async def test_without_keepalive_the_idle_socket_is_closed_and_opened_again():
    fake = await FakeDeepgram(script=[TABLE], idle_timeout=0.3).start()
    stream = recognition(fake, keepalive_seconds=30)
    try:
        await feed(stream, silence(100))
        await reconnected(stream)
        await feed(stream, speech(1000) + silence(500), start_ms=1100)
        events = await events_until(stream, 1)
        await stream.aclose()
    finally:
        await fake.aclose()
    assert stream.connections == 2  # closed with 1011 for idleness, reconnected
    final = events[-1]
    assert final.text == TABLE and abs(final.start_ms - 1100) <= 40  # the new socket's zero is its first frame


async def reconnected(stream: DeepgramRecognition) -> None:
    async with asyncio.timeout(20):
        while stream.connections < 2:
            await asyncio.sleep(0.02)


async def test_a_dropped_socket_reconnects_and_the_next_turn_keeps_our_timeline():
    fake = await FakeDeepgram(script=["Yes, we do.", MENU], drop_after_results=1).start()
    stream = recognition(fake)
    try:
        at = await feed(stream, silence(200) + speech(300) + silence(400))  # its final result, then the drop
        await reconnected(stream)
        await feed(stream, silence(700) + speech(2500) + silence(600), start_ms=at)
        events = await events_until(stream, 2)
        await stream.aclose()
    finally:
        await fake.aclose()
    finals = [e for e in events if isinstance(e, FinalText)]
    assert stream.connections == 2 and len(fake.sockets) == 2
    assert finals[0].text == "Yes, we do."
    assert finals[1].text == MENU
    assert abs(finals[1].start_ms - (at + 700)) <= 40, (finals[1], at)


async def test_a_refused_key_fails_the_listening_clearly():
    fake = await FakeDeepgram().start()
    stream = recognition(fake, key="wrong")
    try:
        await feed(stream, silence(100))
        with pytest.raises(DeepgramError, match="HTTP 401"):
            await stream.next_event(10)
        assert stream.unfinished  # the listener asks, and hears the failure, rather than a silence
        await stream.aclose()
    finally:
        await fake.aclose()


async def test_a_drop_whose_reconnect_is_refused_fails_the_listening():
    fake = await FakeDeepgram(script=[TABLE], drop_after_results=1, refuse_from_connection=2).start()
    stream = recognition(fake)
    try:
        await feed(stream, silence(200) + speech(300) + silence(400))
        with pytest.raises(DeepgramError, match="HTTP 503"):
            async with asyncio.timeout(20):
                while True:
                    await stream.next_event(20)
        await stream.aclose()
    finally:
        await fake.aclose()
    assert fake.upgrades == 2


async def test_a_record_tone_is_reported_after_the_greeting_it_ends():
    fake = await FakeDeepgram(script=[TABLE, ""]).start()  # the tone itself is heard as no words
    stream = recognition(fake, tones=True)
    try:
        await feed(stream, silence(200) + speech(1500) + silence(600) + tone(600) + silence(800), pace=0.001)
        events = []
        async with asyncio.timeout(20):
            while not any(isinstance(e, ToneHeard) for e in events):
                events.append(await stream.next_event(20))
        await stream.aclose()
    finally:
        await fake.aclose()
    heard = [e for e in events if isinstance(e, (FinalText, ToneHeard))]
    assert isinstance(heard[0], FinalText) and heard[0].text == TABLE
    assert isinstance(heard[1], ToneHeard) and abs(heard[1].at_ms - 2300) <= 60
    assert stream.last_tone_ms == heard[1].at_ms


async def feed_in_step(stream: DeepgramRecognition, fake: FakeDeepgram, frames: list[np.ndarray]) -> int:
    """Frames from 0, each once the fake has heard the one before and its answers have reached the stream."""
    at = 0
    for frame in frames:
        stream.feed(frame, at)
        at += FRAME_MS
        async with asyncio.timeout(20):
            while not (fake.sockets and fake.sockets[-1]["audio_seconds"] >= at / 1000 - 1e-6
                       and stream.messages_received >= len(fake.sockets[-1]["sent"])):
                await asyncio.sleep(0.001)
    return at


async def test_a_pause_gives_a_guess_on_our_vads_span_and_more_words_revise_it():
    fake = await FakeDeepgram(script=[MENU], interim_every_ms=100).start()
    stream = recognition(fake, endpointing_ms=600, guess_after_ms=100)
    try:
        at = await feed_in_step(stream, fake, silence(200) + speech(1000) + silence(300) + speech(800))
        stream.finish(at)  # the line closed mid-sentence: Finalize
        events = await events_until(stream, 1)
        await stream.aclose()
    finally:
        await fake.aclose()
    final = events[-1]
    # Deepgram's own interims start at its first word (200 ms); the guess at our VAD's start, its pre-roll in.
    [guess] = [e for e in events if isinstance(e, InterimText) and e.start_ms < 200]
    assert guess.end_ms == 1200 and guess.asked_ms == 1300 and guess.text == MENU  # at the pause
    assert final.text == MENU and final.start_ms == guess.start_ms and final.end_ms >= 2200, final
    assert stream.guess_verdict(guess.start_ms, guess.end_ms) is False and stream.guesses_revised == 1


async def test_one_utterance_transcribed_over_a_short_socket():
    fake = await FakeDeepgram(script=[TABLE]).start()
    try:
        pcm = np.concatenate(silence(100) + speech(900) + silence(100))
        text = await DeepgramSTT(DeepgramOptions("dg-test", url=fake.url, language="fr")).transcribe(pcm, 8000)
    finally:
        await fake.aclose()
    assert text == TABLE
    [socket] = fake.sockets
    assert socket["query"]["encoding"] == "linear16" and socket["query"]["language"] == "fr"
    assert "interim_results" not in socket["query"] and socket["controls"] == ["CloseStream"]


async def test_bys_stt_deepgram_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ValueError, match="BYS_DEEPGRAM_API_KEY"):
        local_voice(VoiceConfig(stt="deepgram"), tmp_path)
    monkeypatch.setenv("BYS_STT", "deepgram")
    monkeypatch.setenv("BYS_DEEPGRAM_API_KEY", "dg-test")
    monkeypatch.setenv("BYS_DEEPGRAM_MODEL", "nova-2-phonecall")
    monkeypatch.setenv("BYS_DEEPGRAM_URL", "ws://127.0.0.1:9/v1/listen")
    monkeypatch.setenv("BYS_DEEPGRAM_ENDPOINTING_MS", "500")
    config = VoiceConfig(turn_detector="off")
    voice = local_voice(config, tmp_path)
    stream = voice.recognition(detect_tones=True, language="he-IL")
    assert isinstance(stream, DeepgramRecognition) and stream.tones is not None
    assert stream.options.model == "nova-2-phonecall" and stream.options.endpointing_ms == 500
    assert stream.options.language == "he-IL" and stream.options.url == "ws://127.0.0.1:9/v1/listen"
    stt, _ = await voice.load()
    assert isinstance(stt, DeepgramSTT)  # no Whisper is loaded
    assert isinstance(local_voice(VoiceConfig(stt="local", turn_detector="off"), tmp_path).recognition(), BatchRecognition)
    monkeypatch.setitem(sys.modules, "websockets", None)  # the realtime extra is not installed
    with pytest.raises(ValueError, match=r"pip install 'byourside-server\[realtime\]'"):
        local_voice(config, tmp_path)


@pytest.mark.voice
async def test_a_call_over_sip_hears_the_callee_through_deepgram(tmp_path: Path, voice_factory,
                                                                 monkeypatch: pytest.MonkeyPatch):
    """The runtime's offline agent calls the SIP simulator's restaurant (Sofia, Piper and faster-whisper) with
    BYS_STT=deepgram: every word of Sofia's reaches the agent through the fake Deepgram, which hears with
    faster-whisper; the agent speaks through Piper."""
    async def hear(pcm: np.ndarray, rate: int) -> str:
        whisper, _ = await voice_factory.load()
        return await whisper.transcribe(pcm, rate)

    fake = await FakeDeepgram(hear=hear).start()
    for name, value in {"BYS_STT": "deepgram", "BYS_DEEPGRAM_API_KEY": "dg-test", "BYS_DEEPGRAM_URL": fake.url,
                        # Piper pauses between Sofia's sentences: a longer silence ends her turn.
                        "BYS_DEEPGRAM_ENDPOINTING_MS": "800"}.items():
        monkeypatch.setenv(name, value)
    voice = local_voice(VoiceConfig(), tmp_path / "models")
    await voice.load()
    simulator = await SipSimulator(load_scenarios(), voice_factory, host="127.0.0.1", port=0, patience=30).start()
    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path,
                                   poll_seconds=0.05, heartbeat_seconds=0.2)
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=simulator.uri, bind_host="127.0.0.1")), voice,
                                tmp_path / "recordings")
    try:
        account, _ = await new_account(services)
        call = await conduct_call(services, account, telephony, OfflineBrain(), {
            "to": "+14155550123",
            "objective": "Ask whether they have a table for two tonight and how much the tasting menu costs.",
            "fields": [{"name": "table_available", "type": "boolean"},
                       {"name": "tasting_menu_price", "type": "number"}]}, timeout=900)
        await simulator.finish_calls(timeout=60)
    finally:
        await telephony.aclose()
        await services.aclose()
        await simulator.aclose()
        await fake.aclose()

    assert call.status.value == "completed", (call.status, call.end_reason, call.turns, fake.heard)
    said = " ".join(t.text.lower() for t in call.turns if t.speaker == "contact")
    assert "copper pot" in said, (call.turns, fake.heard)  # Sofia's greeting, as Deepgram heard it
    assert call.extracted == {"table_available": True, "tasting_menu_price": 85}, (call.extracted, call.turns)
    assert "table" in " ".join(simulator.callees[0].heard).lower(), simulator.callees[0].heard
    live = [s for s in fake.sockets if s["query"].get("interim_results") == "true"]
    assert len(live) == 1, [s["query"] for s in fake.sockets]  # one stream for the whole call
    assert live[0]["query"]["endpointing"] == "800" and live[0]["query"]["encoding"] == "mulaw"
    assert live[0]["controls"][-1] == "CloseStream"
    callee, ours = read_stereo(Path(call.recording_path))
    assert callee.any() and ours.any()
    turns = call.latency["turns"]
    assert len(turns) >= 2, call.latency
    for turn in turns:  # Deepgram's words come with its verdict: no STT time after the turn closed
        assert turn["sttMs"] == 0 and turn["totalMs"] >= turn["endpointingMs"] >= 0, turn


# -- the voice engine listening through Deepgram: speculation and speech over our reply --

BACKCHANNEL, WORDS_OVER_US = "Mm-hmm.", "Sorry, can I ask something first?"
LOUDNESS_WORDS = {4000: BACKCHANNEL, 8000: WORDS_OVER_US}  # what the fake hears in a buzz of that loudness


async def hear_by_loudness(pcm: np.ndarray, rate: int) -> str:
    peak = int(np.abs(pcm.astype(np.int32)).max()) * 2  # paced_media.voiced: a buzz at half its loudness
    return min(LOUDNESS_WORDS.items(), key=lambda item: abs(item[0] - peak))[1]


class ConstantTTS(TextToSpeech):
    """50 ms of a steady tone per character."""

    async def synthesize(self, text: str) -> np.ndarray:
        return np.full(len(text) * 50 * 8, 1000, dtype=np.int16)


class CountingSTT(SpeechToText):
    """The barge-in judgement's DeepgramSTT, counting the transcriptions under way."""

    def __init__(self, inner: SpeechToText) -> None:
        self.inner, self.under_way = inner, 0

    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> str:
        self.under_way += 1
        try:
            return await self.inner.transcribe(pcm, sample_rate)
        finally:
            self.under_way -= 1


class LockstepMedia(ScriptedMedia):
    """Scripted media in step with the fake Deepgram.

    After each inbound frame the tick waits until the fake has heard it and its answers have reached the
    recogniser, and while the barge-in judgement asks its own Deepgram socket: the service answers within the
    frame, however loaded the machine, so what happens when is decided by the audio alone.
    """

    def __init__(self, inbound: np.ndarray, fake: FakeDeepgram, stt: CountingSTT) -> None:
        super().__init__(inbound)
        self.fake, self.stt = fake, stt
        self.line: VoiceLine | None = None

    def live_socket(self) -> dict | None:
        return next((s for s in self.fake.sockets if s["query"].get("interim_results") == "true"), None)

    async def after_frame(self) -> None:
        listening = self.line.listening
        async with asyncio.timeout(20):
            while True:
                await asyncio.sleep(0.001)
                live = self.live_socket()
                if (listening.now_ms >= self.ticks * FRAME_MS and live is not None
                        and live["audio_seconds"] >= self.ticks * FRAME_MS / 1000 - 1e-6
                        and listening.messages_received >= len(live["sent"]) and not self.stt.under_way):
                    break


async def run_until(media: LockstepMedia, task: asyncio.Task, limit_ticks: int = 1000):
    for _ in range(limit_ticks):
        if task.done():
            return task.result()
        await media.tick()
    raise AssertionError("the line never finished")


@asynccontextmanager
async def deepgram_line(fake: FakeDeepgram, inbound: np.ndarray, *, speculate: bool = True,
                        endpointing_ms: int = 600) -> AsyncIterator[tuple[VoiceLine, LockstepMedia]]:
    """A VoiceLine hearing the callee through the (unstarted) fake, wired as BYS_STT=deepgram wires it
    (factory.deepgram_stt); the line is hung up and the fake closed after."""
    await fake.start()
    try:
        config = VoiceConfig(stt="deepgram", deepgram_api_key="dg-test", deepgram_url=fake.url,
                             deepgram_endpointing_ms=endpointing_ms, turn_detector="off")
        stt_factory, recognition_factory = deepgram_stt(config)
        stt = CountingSTT(stt_factory())
        voice = VoiceFactory(lambda: stt, ConstantTTS, lambda: make_endpointer(config, None), barge_in_ms=500,
                             barge_in_pause_ms=120, stt_early_ms=100, speculate=speculate,
                             recognition=recognition_factory)
        await voice.load()
        media = LockstepMedia(inbound, fake, stt)
        media.line = VoiceLine(media, voice, "dg-call")
        try:
            yield media.line, media
        finally:
            await media.line.hangup()
    finally:
        await fake.aclose()


def callee_audio(*parts: tuple[int, int]) -> np.ndarray:
    """(ms, loudness) parts; loudness 0 is silence."""
    return np.concatenate([voiced(ms, loudness) if loudness else quiet(ms) for ms, loudness in parts])


def speech_final_sent(media: LockstepMedia) -> bool:
    return any(m.get("speech_final") for m in media.live_socket()["sent"])


async def test_a_speculative_reply_is_prepared_at_a_pause_and_spoken_once_deepgram_closes_the_turn():
    fake = FakeDeepgram(script=[TABLE], interim_every_ms=100)
    audio = callee_audio((200, 0), (1500, 6000), (4000, 0))
    async with deepgram_line(fake, audio) as (line, media):
        heard = await run_until(media, asyncio.ensure_future(line.listen(30)))
        asked_at = media.elapsed_ms()
        assert isinstance(heard, Speech) and heard.text == TABLE
        assert not speech_final_sent(media) and asked_at < 1700 + 600  # before Deepgram's endpointing closed it
        spoken = await run_until(media, asyncio.ensure_future(line.say("A table for two, wonderful.")))
        assert not spoken.interrupted
        first_audio = media.sent.index(True) * FRAME_MS
        closed_at = next(m for m in media.live_socket()["sent"] if m.get("speech_final"))["start"]
        assert first_audio >= 1700 + 600 > asked_at, (first_audio, closed_at)  # held until the turn closed
        assert line.early_transcripts_used == 1
        again = await run_until(media, asyncio.ensure_future(line.listen(0.3)))
        assert isinstance(again, Silence), again  # the closed turn is the guessed one: not heard twice
        turn = line.latency.turns[-1]
        assert turn.gate_open_ms is not None and turn.gate_open_ms >= 1700 + 600


async def test_a_speculative_reply_is_dropped_when_the_callee_goes_on_and_the_whole_turn_follows():
    fake = FakeDeepgram(script=[MENU], interim_every_ms=100)
    audio = callee_audio((200, 0), (1000, 6000), (300, 0), (1200, 6000), (4000, 0))
    async with deepgram_line(fake, audio) as (line, media):
        guess = await run_until(media, asyncio.ensure_future(line.listen(30)))  # at the pause
        assert isinstance(guess, Speech) and media.elapsed_ms() < 1200 + 300
        spoken = await run_until(media, asyncio.ensure_future(line.say("Eighty five, I see.")))
        assert spoken.interrupted and spoken.heard == "" and not any(media.sent)
        assert line.replies_dropped == 1
        # The whole turn, guessed again at its end: the pause and all.
        whole = await run_until(media, asyncio.ensure_future(line.listen(30)))
        assert isinstance(whole, Speech) and whole.text == MENU
        assert whole.start_ms == guess.start_ms and whole.end_ms >= 2600, whole
        spoken = await run_until(media, asyncio.ensure_future(line.say("Eighty five, I see.")))
        assert not spoken.interrupted and media.sent.index(True) * FRAME_MS >= 2700 + 600
        assert line.early_transcripts_used == 1  # Deepgram closed the turn with the second guess's words


async def test_a_pause_our_vad_closes_inside_deepgrams_turn_drops_the_reply_and_the_whole_turn_is_answered():
    # The pause (900 ms) outlasts our VAD's end silence (700 ms) but not Deepgram's endpointing (1200 ms): our
    # VAD hears two spans, Deepgram one turn. The guess at the second pause replaces the first one's.
    # The second span is shorter than the first: our VAD's voiced time in it never passes the guess's.
    fake = FakeDeepgram(script=[MENU], interim_every_ms=100)
    audio = callee_audio((200, 0), (1500, 6000), (900, 0), (600, 6000), (6000, 0))
    async with deepgram_line(fake, audio, endpointing_ms=1200) as (line, media):
        guess = await run_until(media, asyncio.ensure_future(line.listen(30)))  # at the first pause
        assert isinstance(guess, Speech) and media.elapsed_ms() < 1700 + 700
        spoken = await run_until(media, asyncio.ensure_future(line.say("Eighty five, I see.")))
        # Settled once Deepgram's words went on, not left waiting for a verdict on a span it no longer guesses.
        assert spoken.interrupted and spoken.heard == "" and not any(media.sent)
        assert media.elapsed_ms() < 3200 + 1200, media.elapsed_ms()  # before Deepgram closed the turn
        whole = await run_until(media, asyncio.ensure_future(line.listen(30)))
        assert isinstance(whole, Speech) and whole.text == MENU and whole.end_ms >= 3100, whole
        spoken = await run_until(media, asyncio.ensure_future(line.say("Eighty five, I see.")))
        assert not spoken.interrupted and media.sent.index(True) * FRAME_MS >= 3200 + 1200
        again = await run_until(media, asyncio.ensure_future(line.listen(0.3)))
        assert isinstance(again, Silence), again  # one answer for the one turn


async def test_without_speculation_the_turn_is_the_brains_when_deepgram_closes_it():
    fake = FakeDeepgram(script=[TABLE], interim_every_ms=100)
    audio = callee_audio((200, 0), (1500, 6000), (4000, 0))
    async with deepgram_line(fake, audio, speculate=False) as (line, media):
        heard = await run_until(media, asyncio.ensure_future(line.listen(30)))
        assert isinstance(heard, Speech) and heard.text == TABLE and speech_final_sent(media)


REPLY = "Let me tell you about our opening hours and the menu we serve on weekdays."  # 3.7 s of speech


async def test_a_backchannel_over_our_reply_neither_stops_it_nor_becomes_a_turn():
    fake = FakeDeepgram(hear=hear_by_loudness)
    audio = callee_audio((800, 0), (300, 4000), (8000, 0))
    async with deepgram_line(fake, audio) as (line, media):
        spoken = await run_until(media, asyncio.ensure_future(line.say(REPLY)))
        assert not spoken.interrupted and line.backchannels_heard == 1
        assert BACKCHANNEL in fake.heard  # the live stream heard it too, as a turn of its own
        after = await run_until(media, asyncio.ensure_future(line.listen(0.5)))
        assert isinstance(after, Silence), after


async def test_words_over_our_reply_stop_it_and_are_the_next_turn():
    fake = FakeDeepgram(hear=hear_by_loudness)
    audio = callee_audio((800, 0), (300, 8000), (8000, 0))
    async with deepgram_line(fake, audio) as (line, media):
        spoken = await run_until(media, asyncio.ensure_future(line.say(REPLY)))
        assert spoken.interrupted and line.backchannels_heard == 0
        heard = await run_until(media, asyncio.ensure_future(line.listen(30)))
        assert isinstance(heard, Speech) and heard.text == WORDS_OVER_US
