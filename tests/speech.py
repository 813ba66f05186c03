"""Steady Piper speech at the telephone's rate, for tests of the models that hear it (VAD, turn detector)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from byourside_server.voice.audio import TELEPHONE_RATE, resample, ulaw_decode, ulaw_encode


def piper_renderer() -> Callable[[str], np.ndarray]:
    """``render(text)``: the sentence at 8 kHz through G.711, without the quiet Piper leaves around it.

    Noise scales at zero, so the same text always renders the same."""
    from piper.config import SynthesisConfig

    from byourside_server.voice.tts import PiperTTS

    voice = PiperTTS.load("packaged:joe").voice
    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)

    def render(text: str) -> np.ndarray:
        pcm = np.concatenate([np.frombuffer(c.audio_int16_bytes, np.int16) for c in voice.synthesize(text, steady)])
        pcm = ulaw_decode(ulaw_encode(resample(pcm, voice.config.sample_rate, TELEPHONE_RATE)))
        audible = np.flatnonzero(np.abs(pcm) > 500)
        return pcm[audible[0]:audible[-1] + 1]

    return render


def silence(ms: int) -> np.ndarray:
    return np.zeros(ms * TELEPHONE_RATE // 1000, np.int16)
