"""The voice engine (voice/engine.py) over a scripted media channel, one 20 ms tick at a time.

The channel is the media port's contract in miniature: the test moves its
clock, so what the callee "says" (a tone of a given loudness, which the fake
STT maps to words) lines up exactly with what the engine plays, with no real
time involved. What is checked: interruptions are truthful (what was heard,
the interrupted flag, the transcript), backchannels do not stop a reply,
a reply to a stale turn is dropped, and the port's playback positions.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from scripted_media import ScriptedMedia

from byourside_server.domain import Turn
from byourside_server.runtime.recording_line import RecordingLine
from byourside_server.telephony.base import Silence, Speech
from byourside_server.telephony.media import FRAME_SAMPLES
from byourside_server.voice.engine import VoiceLine
from byourside_server.voice.speaking import is_backchannel
from byourside_server.voice.factory import VoiceFactory
from byourside_server.voice.ports import SpeechChunk, SpeechToText, TextToSpeech
from byourside_server.voice.turn import TurnDetector
from byourside_server.voice.vad import Endpointer, LevelGate

MS_PER_CHAR = 50  # the fake TTS speaks 50 ms per character
WORDS_BY_LOUDNESS = {3000: "uh-huh", 6000: "Sorry, can I ask something first?", 9000: "We open at nine."}


class LoudnessSTT(SpeechToText):
    """Hears the words a loudness stands for (the callee's "speech" is a tone of that amplitude)."""

    def __init__(self) -> None:
        self.calls = 0

    async def transcribe(self, pcm, sample_rate):  # noqa: ANN001
        self.calls += 1
        loud = int(np.abs(pcm.astype(np.int32)).max())
        return next((words for level, words in WORDS_BY_LOUDNESS.items() if abs(loud - level) < 500), "")


class CharTTS(TextToSpeech):
    async def synthesize(self, text):  # noqa: ANN001
        return np.full(len(text) * MS_PER_CHAR * 8, 1000, dtype=np.int16)


async def voice(**options) -> VoiceFactory:
    """The fake models, loaded before the test's clock starts (loading runs in a thread, in real time)."""
    defaults = {"barge_in_ms": 500, "barge_in_pause_ms": 120, "stt_early_ms": 0}
    factory = VoiceFactory(LoudnessSTT, CharTTS, lambda: Endpointer(lambda f: np.abs(f).max() > 2000,
                                                                    end_silence_ms=400),
                           **{**defaults, **options})
    await factory.load()
    return factory


def callee(*parts: tuple[int, int]) -> np.ndarray:
    """The callee's audio: (ms, loudness) parts; loudness 0 is silence."""
    return np.concatenate([np.full(ms * 8, level, dtype=np.int16) for ms, level in parts])


async def run_until(media: ScriptedMedia, task: asyncio.Task, limit_ticks: int = 2000):  # noqa: ANN201
    for _ in range(limit_ticks):
        if task.done():
            return task.result()
        await media.tick()
    raise AssertionError("the line never finished")


async def test_a_reply_heard_in_full_is_not_interrupted():
    media = ScriptedMedia(callee((10_000, 0)))
    line = VoiceLine(media, await voice(), "c1")
    text = "We will see you at ten."
    spoken = await run_until(media, asyncio.ensure_future(line.say(text)))
    assert not spoken.interrupted and spoken.heard is None and spoken.heard_of(text) == text
    assert sum(media.sent) * 20 >= len(text) * MS_PER_CHAR - 20
    await line.hangup()


async def test_words_over_our_speech_pause_it_at_once_and_stop_it_with_only_the_heard_words_kept():
    # The callee starts talking 1 s into a 3.6 s reply; we were 1 s (20 characters) in.
    text = "I am calling to ask about the table for two tonight, please."
    media = ScriptedMedia(callee((1000, 0), (1500, 6000), (5000, 0)))
    line = RecordingLine(VoiceLine(media, await voice(), "c2"), 600_000)
    spoken = await run_until(media, asyncio.ensure_future(line.say(text)))
    assert spoken.interrupted
    onset = 1000 // 20
    quiet_from = next(i for i in range(onset, len(media.sent)) if not media.sent[i])
    assert (quiet_from - onset) * 20 <= 200  # paused within ~200 ms of their speech
    assert text.startswith(spoken.heard) and 0 < len(spoken.heard) < len(text) / 2, spoken.heard
    assert line.turns == [Turn("agent", spoken.heard, spoken.start_ms, spoken.end_ms, interrupted=True)]
    assert line.turns[0].to_json()["interrupted"] is True
    heard = await run_until(media, asyncio.ensure_future(line.listen(5)))
    assert isinstance(heard, Speech) and heard.text == WORDS_BY_LOUDNESS[6000]
    await line.hangup()


async def test_a_backchannel_pauses_our_speech_and_it_resumes_where_it_stopped():
    text = "Let me tell you about the tasting menu and the wine pairing tonight."
    media = ScriptedMedia(callee((1200, 0), (300, 3000), (8000, 0)))
    engine = VoiceLine(media, await voice(), "c3")
    line = RecordingLine(engine, 600_000)
    spoken = await run_until(media, asyncio.ensure_future(line.say(text)))
    assert not spoken.interrupted, spoken
    assert engine.backchannels_heard == 1
    assert sum(media.sent) * 20 >= len(text) * MS_PER_CHAR - 20  # every frame of the reply went out, once
    paused = [i for i in range(60, len(media.sent) - 1) if media.sent[i - 1] and not media.sent[i]]
    assert paused, "the reply never paused for the backchannel"
    assert line.turns == [Turn("agent", text, spoken.start_ms, spoken.end_ms)]
    # The "uh-huh" is not a turn the brain has to answer.
    assert isinstance(await run_until(media, asyncio.ensure_future(line.listen(0.05))), Silence)
    await line.hangup()


async def test_a_reply_is_dropped_when_the_callee_went_on_before_it_started():
    media = ScriptedMedia(callee((200, 0), (800, 9000), (600, 0), (900, 6000), (3000, 0)))
    line = RecordingLine(VoiceLine(media, await voice(), "c4"), 600_000)
    first = await run_until(media, asyncio.ensure_future(line.listen(5)))
    assert first.text == WORDS_BY_LOUDNESS[9000]
    await media.tick(1300 // 20)  # the brain took its time: the callee went on meanwhile
    spoken = await run_until(media, asyncio.ensure_future(line.say("Great, nine it is.")))
    assert spoken.interrupted and spoken.heard == "" and not any(media.sent[-5:])
    assert [t.speaker for t in line.turns] == ["contact"]  # nothing was heard, nothing is in the transcript
    went_on = await run_until(media, asyncio.ensure_future(line.listen(5)))
    assert went_on.text == WORDS_BY_LOUDNESS[6000]
    await line.hangup()


@pytest.mark.parametrize(("text", "expected"), [
    ("uh-huh", True), ("Okay.", True), ("Mm-hmm, right.", True), ("", True),
    ("Wait, no, that's wrong.", False), ("Sorry, can I ask something first?", False),
])
def test_backchannels_are_short_acknowledgements(text, expected):
    assert is_backchannel(text) is expected


def test_the_words_heard_follow_the_played_position():
    chunk = SpeechChunk("one two three four", np.zeros(8 * 1800, dtype=np.int16))  # 1.8 s, 100 ms per char
    assert chunk.heard(0) == ""
    assert chunk.heard(700) == "one two"  # "two" ends at char 7
    assert chunk.heard(1799) == "one two three"
    assert chunk.heard(1800) == "one two three four"
    timed = SpeechChunk("one two three four", chunk.pcm, word_end_ms=(200, 400, 1500, 1800))
    assert timed.heard(1000) == "one two"


async def test_incremental_speech_starts_at_the_first_clause():
    rendered: list[str] = []

    class Recording(CharTTS):
        async def synthesize(self, text):  # noqa: ANN001
            rendered.append(text)
            return await super().synthesize(text)

    speech = Recording().incremental()
    speech.push("Sure, ")
    speech.push("we have a table")
    speech.push(" at ten, and another ")
    await asyncio.sleep(0.01)
    assert rendered == ["Sure, we have a table at ten,"]  # before the sentence is complete
    speech.push("at eleven. Shall I book one?")
    speech.end()
    chunks = [chunk.text async for chunk in speech]
    assert chunks == ["Sure, we have a table at ten,", "and another at eleven.", "Shall I book one?"]


async def test_a_turn_recognised_after_the_listen_timeout_is_still_returned():
    """A slow STT (a loaded machine) finishes after the listen's timeout: the turn is still heard."""
    gate = asyncio.Event()

    class SlowSTT(LoudnessSTT):
        async def transcribe(self, pcm, sample_rate):  # noqa: ANN001
            await gate.wait()
            return await super().transcribe(pcm, sample_rate)

    factory = VoiceFactory(SlowSTT, CharTTS, lambda: Endpointer(lambda f: np.abs(f).max() > 2000, end_silence_ms=400),
                           stt_early_ms=200)
    await factory.load()  # early transcription needs the loaded STT
    media = ScriptedMedia(callee((200, 0), (800, 9000), (3000, 0)))
    line = VoiceLine(media, factory, "c5")
    listening = asyncio.ensure_future(line.listen(0.05))
    await media.tick(1600 // 20)  # the turn closed; its transcription (started early) is still running
    await asyncio.sleep(0.1)  # past the listen's timeout
    assert not listening.done()
    gate.set()
    heard = await run_until(media, listening)
    assert isinstance(heard, Speech) and heard.text == WORDS_BY_LOUDNESS[9000], heard
    assert line.early_transcripts_used == 1
    await line.hangup()


async def test_a_turn_the_callee_went_on_from_before_it_was_answered_is_heard_as_one():
    media = ScriptedMedia(callee((200, 0), (800, 9000), (600, 0), (900, 6000), (3000, 0)))
    line = VoiceLine(media, await voice(), "c6")
    await media.tick(3000 // 20)  # both halves closed before the brain asked (a slow brain, a busy machine)
    heard = await run_until(media, asyncio.ensure_future(line.listen(5)))
    assert heard.text == f"{WORDS_BY_LOUDNESS[9000]} {WORDS_BY_LOUDNESS[6000]}", heard
    assert heard.start_ms <= 200 and heard.end_ms == 2500  # from the first half (its pre-roll) to the second
    await line.hangup()


async def speculating() -> VoiceFactory:
    return await voice(stt_early_ms=200, speculate=True)


async def test_speculation_answers_at_the_early_transcript_and_speaks_once_the_turn_closes():
    media = ScriptedMedia(callee((200, 0), (800, 9000), (5000, 0)))
    line = VoiceLine(media, await speculating(), "c7")
    heard = await run_until(media, asyncio.ensure_future(line.listen(5)))
    assert heard.text == WORDS_BY_LOUDNESS[9000]
    asked_at = media.ticks * 20
    assert asked_at < 1000 + 400  # before the 400 ms of silence that close the turn
    spoken = await run_until(media, asyncio.ensure_future(line.say("Nine works.")))
    first_audio = media.sent.index(True) * 20
    assert first_audio >= 1000 + 400 and not spoken.interrupted  # held until the turn closed, then spoken
    assert isinstance(await run_until(media, asyncio.ensure_future(line.listen(0.05))), Silence)  # not heard twice
    await line.hangup()


async def test_a_speculative_reply_is_dropped_when_the_callee_goes_on():
    media = ScriptedMedia(callee((200, 0), (800, 9000), (300, 0), (900, 6000), (5000, 0)))
    line = VoiceLine(media, await speculating(), "c8")
    await run_until(media, asyncio.ensure_future(line.listen(5)))  # at the pause
    spoken = await run_until(media, asyncio.ensure_future(line.say("Nine works.")))
    assert spoken.interrupted and spoken.heard == "" and not any(media.sent)
    whole = await run_until(media, asyncio.ensure_future(line.listen(5)))
    assert isinstance(whole, Speech) and whole.end_ms >= 2200  # the whole turn, pause and all
    await line.hangup()


def test_the_vad_under_the_endpointer_is_chosen_by_setting():
    from byourside_server.voice.factory import VoiceConfig, make_endpointer
    from byourside_server.voice.silero_vad import SileroVad

    silero = make_endpointer(VoiceConfig(vad_engine="silero", turn_detector="off", vad_level_gate_dbfs=None), None)
    webrtc = make_endpointer(VoiceConfig(turn_detector="off", vad_level_gate_dbfs=None), None)
    assert isinstance(silero.is_speech, SileroVad) and not isinstance(webrtc.is_speech, SileroVad)
    assert not silero.is_speech(np.zeros(FRAME_SAMPLES, dtype=np.int16))
    gated = make_endpointer(VoiceConfig(vad_engine="silero", turn_detector="off"), None)  # the -50 dBFS gate
    assert isinstance(gated.is_speech, LevelGate) and isinstance(gated.is_speech.classifier, SileroVad)


def test_the_level_gate_ends_speech_the_vad_still_hears_in_a_quiet_tail():
    """A tail at -55 dBFS that the VAD calls speech is silence behind the -50 dBFS gate; -40 dBFS passes."""
    always = LevelGate(lambda frame: True, -50.0)
    tone = np.sin(np.arange(FRAME_SAMPLES) * 2 * np.pi * 300 / 8000) * np.sqrt(2)  # RMS 1.0
    assert always((tone * 32768 * 10 ** (-40 / 20)).astype(np.int16))
    assert not always((tone * 32768 * 10 ** (-55 / 20)).astype(np.int16))
    assert not LevelGate(lambda frame: False, -50.0)((tone * 30000).astype(np.int16))  # loud but not a voice


@pytest.mark.parametrize(("greeting", "kind", "cause"), [
    (callee((600, 9000), (3000, 0)), "human", "greeting_then_silence"),  # "Hello?", then waiting for us
    (callee((2500, 9000), (1000, 0)), "machine", "long_greeting"),  # an unbroken recorded greeting
])
async def test_the_cadence_of_the_answer_is_the_lines_verdict_with_its_figures(greeting, kind, cause):
    media = ScriptedMedia(greeting)
    line = VoiceLine(media, await voice(), "c1")
    assert line.answered_by() is None  # nothing decided before anything was heard
    await media.tick(len(greeting) // FRAME_SAMPLES)
    verdict = line.answered_by()
    assert verdict is not None and verdict.kind == kind
    assert verdict.evidence["source"] == "cadence" and verdict.evidence["cause"] == cause
    assert 0 < verdict.evidence["decidedMs"] <= len(greeting) // 8
    await line.hangup()


@pytest.mark.parametrize(("sound", "dropped"), [((80, 9000), False), ((900, 6000), True)])
async def test_a_sound_begun_as_we_are_about_to_speak_holds_the_reply_until_it_is_a_cough_or_talk(sound, dropped):
    """A cough (80 ms) just before our first audio delays it until 100 ms of quiet; talk drops the reply."""
    media = ScriptedMedia(callee((200, 0), (800, 9000), (800, 0), sound, (3000, 0)))
    line = VoiceLine(media, await voice(), "c9")
    heard = await run_until(media, asyncio.ensure_future(line.listen(5)))
    assert heard.text == WORDS_BY_LOUDNESS[9000]
    await media.tick(1880 // 20 - media.ticks)  # the brain answers as the sound has just begun
    assert line.listening.endpointer.in_speech
    spoken = await run_until(media, asyncio.ensure_future(line.say("Nine works.")))
    if dropped:
        assert spoken.interrupted and spoken.heard == "" and not any(media.sent)
    else:
        assert not spoken.interrupted and media.sent.index(True) * 20 >= 1800 + 80 + 100
    await line.hangup()


class FixedTurnDetector(TurnDetector):
    def __init__(self, probability: float) -> None:
        self.value = probability

    def probability(self, pcm):  # noqa: ANN001
        return self.value


@pytest.mark.parametrize(("judge", "first_audio_from", "first_audio_before"), [
    ("late", 1000 + 300, 1000 + 700),  # no answer yet: the silence speaks, the turn still open
    ("incomplete", 1000 + 1500, 1000 + 1700),  # the judge says the turn goes on: wait for the fallback
])
async def test_a_speculative_reply_starts_after_the_judges_silence_unless_it_says_the_turn_goes_on(
        judge, first_audio_from, first_audio_before):
    from inline_executor import HeldExecutor, InlineExecutor

    executor = HeldExecutor() if judge == "late" else InlineExecutor()
    detector = FixedTurnDetector(0.1)
    factory = VoiceFactory(LoudnessSTT, CharTTS, lambda: Endpointer(
        lambda f: np.abs(f).max() > 2000, end_silence_ms=1500, turn_detector=detector, turn_silence_ms=300,
        executor=executor), barge_in_ms=500, barge_in_pause_ms=120, stt_early_ms=200, speculate=True)
    await factory.load()
    media = ScriptedMedia(callee((200, 0), (800, 9000), (5000, 0)))
    line = VoiceLine(media, factory, "c10")
    heard = await run_until(media, asyncio.ensure_future(line.listen(5)))
    assert heard.text == WORDS_BY_LOUDNESS[9000]
    spoken = await run_until(media, asyncio.ensure_future(line.say("Nine works.")))
    assert not spoken.interrupted
    assert first_audio_from <= media.sent.index(True) * 20 < first_audio_before
    turn = line.latency.turns[-1]  # what held the reply: the gate, not its audio (ready long before)
    assert first_audio_from <= turn.gate_open_ms < first_audio_before
    assert turn.audio_ready_ms is not None and turn.audio_ready_ms < turn.gate_open_ms
    await line.hangup()



class HeldWhisper:
    """Stands in for faster-whisper's model: each transcription waits until the test lets it finish."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = threading.Event()

    def transcribe(self, audio, **options):  # noqa: ANN001, ANN003
        self.runs += 1
        self.release.wait(10)
        return [], None


async def test_a_transcription_cancelled_while_it_waits_for_the_model_is_never_run():
    """Stale early guesses (the callee went on) do not queue up behind the one the model is running."""
    from byourside_server.voice.stt import FasterWhisperSTT

    model = HeldWhisper()
    stt = FasterWhisperSTT(model, "en")
    pcm = np.zeros(8000, dtype=np.int16)
    running = asyncio.ensure_future(stt.transcribe(pcm, 8000))
    while model.runs == 0:
        await asyncio.sleep(0.01)
    stale = [asyncio.ensure_future(stt.transcribe(pcm, 8000)) for _ in range(3)]
    latest = asyncio.ensure_future(stt.transcribe(pcm, 8000))
    await asyncio.sleep(0.05)
    for task in stale:
        task.cancel()
    await asyncio.gather(*stale, return_exceptions=True)  # the cancellations land (the model is still busy)
    model.release.set()
    assert await latest == "" and await running == ""
    assert model.runs == 2  # the one under way and the latest; the three cancelled never reached the model


async def test_with_two_workers_a_transcription_does_not_wait_behind_one_under_way():
    """A guess the model is running cannot be stopped; a second worker takes the turn's own transcription."""
    from byourside_server.voice.stt import FasterWhisperSTT

    model = HeldWhisper()
    stt = FasterWhisperSTT(model, "en", workers=2)
    pcm = np.zeros(8000, dtype=np.int16)
    stale = asyncio.ensure_future(stt.transcribe(pcm, 8000))
    latest = asyncio.ensure_future(stt.transcribe(pcm, 8000))
    for _ in range(500):  # a safety net for a loaded machine
        if model.runs == 2:
            break
        await asyncio.sleep(0.01)
    assert model.runs == 2  # both are in the model at once: the latest did not queue
    third = asyncio.ensure_future(stt.transcribe(pcm, 8000))
    await asyncio.sleep(0.05)
    assert model.runs == 2  # no third worker: it waits its turn
    model.release.set()
    assert await asyncio.gather(stale, latest, third) == ["", "", ""]
    assert model.runs == 3


class CountingTTS(CharTTS):
    def __init__(self) -> None:
        self.rendered: list[str] = []

    async def synthesize(self, text):  # noqa: ANN001
        self.rendered.append(text)
        return await super().synthesize(text)


async def test_a_prepared_opener_starts_from_audio_rendered_ahead():
    tts = CountingTTS()
    factory = VoiceFactory(LoudnessSTT, lambda: tts, lambda: Endpointer(lambda f: np.abs(f).max() > 2000,
                                                                        end_silence_ms=400),
                           barge_in_ms=500, barge_in_pause_ms=120, stt_early_ms=0)
    await factory.load()
    media = ScriptedMedia(callee((10_000, 0)))
    line = VoiceLine(media, factory, "c1")
    line.prepare("Hi, this is the assistant of Acme. I'm calling about your order.")
    for _ in range(20):
        await asyncio.sleep(0)
    assert tts.rendered == ["Hi, this is the assistant of Acme."]  # rendered before anything is said
    text = "Hi, this is the assistant of Acme. I'm calling about your order. Is it still open?"
    spoken = await run_until(media, asyncio.ensure_future(line.say(text)))
    assert not spoken.interrupted and spoken.heard_of(text) == text
    # The first sentence was not rendered again; the rest was rendered as it played.
    assert tts.rendered == ["Hi, this is the assistant of Acme.", "I'm calling about your order.", "Is it still open?"]
    assert sum(media.sent) * 20 >= len(text.replace(" ", "")) * MS_PER_CHAR - 100
    line.prepare("Something never said.")
    await line.hangup()  # a prepared sentence never said is dropped with the call
    assert not line._prepared
