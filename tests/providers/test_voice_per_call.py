"""Voice and language per call: two calls in two languages with two voices, heard differently at the far end.

Each call is placed like any other (placement, the store, a real worker and
the call session) on a deployment whose cascaded engine speaks through
Cartesia: our fake of its TTS WebSocket (tests/providers/fake_cartesia.py,
Cartesia-Version 2025-04-16), which sounds each voice id as its own tone.
The carrier answers with a paced media channel (the far end), whose received
audio is measured. What is checked, per call: the generation request that
reached Cartesia names the call's voice id and language; our recogniser
transcribed the callee in the call's language; and the far end heard the
call's voice (the received audio's dominant frequency is that voice's, and
the two calls' spectra differ). One call is a Hebrew call to Israel (sonic-3
speaks Hebrew), the other a French call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from fake_cartesia import FakeCartesia
from paced_media import PacedMedia, Utterance, voiced
from support import conduct_call, new_account, open_services

from byourside_server.agent.base import OBJECTIVE_MET, Analysis, Brain, ConversationEnd
from byourside_server.clock import SystemClock
from byourside_server.domain import CallTask, Turn
from byourside_server.telephony.base import DialOutcome, DialRequest, DialResult, Line, Speech, Telephony
from byourside_server.voice.factory import VoiceFactory
from byourside_server.voice.ports import SpeechToText
from byourside_server.voice.providers.cartesia import CartesiaTTS
from byourside_server.voice.telephony import VoicedTelephony
from byourside_server.voice.vad import Endpointer
from byourside_server.voice_catalogue import CARTESIA_VOICES

TUESDAY_AFTERNOON = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 16:00 in Tel Aviv: within calling hours
KATIE, RONALD = CARTESIA_VOICES["Katie"][0], CARTESIA_VOICES["Ronald"][0]
TONE_HZ = {KATIE: 260.0, RONALD: 640.0}  # how the fake sounds each voice
OPENING = {"he": "שלום, אני עוזר בינה מלאכותית ואני מתקשר בשם המסעדה.",
           "fr": "Bonjour, je suis un assistant IA et j'appelle pour le restaurant."}
HEARD = {"he": "כן, אני מקשיב", "fr": "Oui, je vous écoute"}


class ShiftedClock(SystemClock):
    def __init__(self, at: datetime) -> None:
        self._offset = at - datetime.now(UTC)

    def now(self) -> datetime:
        return super().now() + self._offset


async def voice_tone(text: str, voice_id: str) -> np.ndarray:
    """The fake's speech: a sine at the voice's own frequency, 60 ms per character."""
    t = np.arange(int(8000 * 0.06 * max(1, len(text)))) / 8000
    return (6000 * np.sin(2 * np.pi * TONE_HZ.get(voice_id, 150.0) * t)).astype(np.int16)


class LanguageSTT(SpeechToText):
    """Hears the callee in the language it was set to (``for_language``), and keeps that language per utterance."""

    def __init__(self, heard_in: list[str | None], language: str | None = None) -> None:
        self.heard_in, self.language = heard_in, language

    def for_language(self, language: str | None) -> LanguageSTT:
        return LanguageSTT(self.heard_in, language)

    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> str:
        self.heard_in.append(self.language)
        return HEARD.get((self.language or "").split("-")[0], "")


class AnsweringCarrier(Telephony):
    """Answers every call with a far end who says hello, then answers once the agent has spoken."""

    name = "paced"

    def __init__(self) -> None:
        self.media: dict[str, PacedMedia] = {}

    async def dial(self, request: DialRequest) -> DialOutcome:
        media = PacedMedia([Utterance(voiced(600), delay_ms=300), Utterance(voiced(700), after="answer", delay_ms=400)])
        self.media[request.call_id] = media
        return DialOutcome(DialResult.ANSWERED, media=media)


class OpeningBrain(Brain):
    """Hears the hello, says the opening in the call's language, hears the answer and hangs up."""

    name = "opening"

    async def converse(self, task: CallTask, line: Line) -> ConversationEnd:
        await line.listen(30)
        await line.say(OPENING[task.language.split("-")[0]])
        event = await line.listen(30)
        await line.hangup()
        return ConversationEnd(OBJECTIVE_MET, notes={"answered": isinstance(event, Speech)})

    async def analyze(self, task: CallTask, turns: Sequence[Turn], end: ConversationEnd) -> Analysis:
        return Analysis(summary="opening said", extracted={}, objective_met=True)


def dominant_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.argmax(spectrum[1:]) + 1) * 8000 / len(pcm)


def spectral_centroid_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float((np.fft.rfftfreq(len(pcm), 1 / 8000) * spectrum).sum() / spectrum.sum())


async def test_two_calls_speak_and_hear_in_their_own_voice_and_language(tmp_path: Path):
    fake = await FakeCartesia(speak_as=voice_tone).start()
    heard_in: list[str | None] = []
    voice = VoiceFactory(lambda: LanguageSTT(heard_in),
                         lambda: CartesiaTTS("car-test", url=fake.url, language="en"),  # the process's: English
                         lambda: Endpointer(lambda frame: np.abs(frame).max() > 2000, end_silence_ms=300))
    carrier = AnsweringCarrier()
    telephony = VoicedTelephony(carrier, voice)
    # A deployment that speaks Hebrew and French: an LLM brain with Cartesia on an audio carrier (placement
    # refuses languages the deployment cannot speak; the calls are conducted by the scripted brain above).
    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path,
                                   clock=ShiftedClock(TUESDAY_AFTERNOON), brain="llm", telephony="sip",
                                   voice_overrides={"tts": "cartesia"})
    calls = []
    try:
        account, _ = await new_account(services)
        for to, language, voice_name in (("+97235551234", "he-IL", "Ronald"), ("+14155550123", "fr-FR", "Katie")):
            before = len(fake.sockets)
            call = await conduct_call(services, account, telephony, OpeningBrain(), {
                "to": to, "objective": "Say who is calling.", "language": language, "voice": voice_name},
                timeout=300)
            calls.append((call, language, fake.sockets[before:], list(heard_in)))
            heard_in.clear()
    finally:
        await telephony.aclose()
        await services.aclose()
        await fake.aclose()

    received = {}
    for call, language, sockets, stt_languages in calls:
        assert call.status.value == "completed", (call.status, call.end_reason)
        assert (call.language, call.voice) == (language, "Ronald" if language == "he-IL" else "Katie")
        voice_id, primary = (RONALD, "he") if language == "he-IL" else (KATIE, "fr")
        requests = [m for s in sockets for m in s["messages"] if "transcript" in m]
        assert requests and all(m["voice"] == {"mode": "id", "id": voice_id} for m in requests)
        assert all(m["language"] == primary and m["model_id"] == "sonic-3" for m in requests)
        assert " ".join(m["transcript"] for m in requests).strip() == OPENING[primary]
        assert stt_languages and set(stt_languages) == {language}  # the recogniser heard the callee in it
        contact = [t.text for t in call.turns if t.speaker == "contact"]
        assert HEARD[primary] in contact, call.turns
        agent = [t.text for t in call.turns if t.speaker == "agent"]
        assert agent == [OPENING[primary]], call.turns
        speech = np.concatenate([frame for frame in carrier.media[call.id].outbound if frame.any()])
        assert len(speech) >= 8000 * 0.06 * len(OPENING[primary]) * 0.9  # the far end heard the whole opening
        received[voice_id] = speech
        assert abs(dominant_hz(speech) - TONE_HZ[voice_id]) < 15, dominant_hz(speech)
    assert abs(spectral_centroid_hz(received[RONALD]) - spectral_centroid_hz(received[KATIE])) > 200


async def test_each_cloud_speaker_takes_a_calls_voice_and_language_and_the_local_voice_stays():
    from byourside_server.voice.ports import TextToSpeech
    from byourside_server.voice.providers.elevenlabs import ElevenLabsTTS
    from byourside_server.voice.providers.openai_tts import OpenAITTS
    from byourside_server.voice_catalogue import ELEVENLABS_VOICES

    eleven = ElevenLabsTTS("xi-test", language="en").for_call("Adam", "fr-CA")
    assert (eleven.voice_id, eleven.language) == (ELEVENLABS_VOICES["Adam"][0], "fr")
    assert ElevenLabsTTS("xi-test", voice_id="mine").for_call(None, "auto").voice_id == "mine"
    assert ElevenLabsTTS("xi-test").for_call("nova").voice_id == ELEVENLABS_VOICES["Domi"][0]  # a contract name
    assert CartesiaTTS("car-test", language="en").for_call("Katie", "auto").language == "en"
    openai = OpenAITTS("sk-test", language="en").for_call("nova", "he-IL")
    assert (openai.voice, openai.language) == ("nova", "he") and "Hebrew" in openai.body("שלום")["instructions"]

    class OneVoice(TextToSpeech):
        async def synthesize(self, text: str) -> np.ndarray:
            return np.zeros(8, dtype=np.int16)

    local = OneVoice()
    assert local.for_call("alloy", "he-IL") is local  # a speaker with one voice speaks as it is


async def test_elevenlabs_asks_for_the_calls_language_on_the_models_that_take_one():
    from fake_elevenlabs import FakeElevenLabs

    from byourside_server.voice.providers.elevenlabs import ElevenLabsTTS

    fake = await FakeElevenLabs().start()
    try:
        await ElevenLabsTTS("xi-test", url=fake.url).for_call("Josh", "de-DE").render("Guten Tag.")
        await ElevenLabsTTS("xi-test", url=fake.url, model="eleven_multilingual_v2").for_call("Josh", "de").render(
            "Guten Tag.")
    finally:
        await fake.aclose()
    flash, multilingual = fake.requests
    assert flash["query"]["language_code"] == "de" and "language_code" not in multilingual["query"]


async def test_whisper_transcribes_in_the_calls_language_on_the_same_model():
    from byourside_server.voice.stt import FasterWhisperSTT, whisper_language

    class Model:
        def __init__(self) -> None:
            self.languages: list[str | None] = []

        def transcribe(self, audio, language, **options):
            self.languages.append(language)
            return [], None

    assert [whisper_language(t) for t in ("he-IL", "fr", "iw", "auto", "xx-YY", None)] == [
        "he", "fr", "he", None, None, None]
    model = Model()
    stt = FasterWhisperSTT(model, "en")
    assert stt.for_language(None) is stt and stt.for_language("en-GB") is stt
    pcm = np.zeros(1600, dtype=np.int16)
    for tag in ("he-IL", "auto", "en-US"):
        await stt.for_language(tag).transcribe(pcm, 8000)
    assert model.languages == ["he", None, "en"]  # auto: Whisper detects the language


def test_a_voice_the_catalogue_does_not_know_keeps_the_configured_one():
    from byourside_server.voice.providers.elevenlabs import ElevenLabsTTS
    from byourside_server.voice.providers.openai_tts import OpenAITTS

    # An operator's own voice as BYS_DEFAULT_VOICE (placement checks only the request's voice against the list)
    assert CartesiaTTS("k", voice_id="my-voice").for_call("my-voice").voice_id == "my-voice"
    assert CartesiaTTS("k", voice_id="my-voice").for_call("alloy").voice_id == KATIE  # a contract name
    assert ElevenLabsTTS("k", voice_id="mine").for_call("mine").voice_id == "mine"
    assert OpenAITTS("k", voice="coral").for_call("unknown").voice == "coral"
