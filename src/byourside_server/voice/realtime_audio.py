"""Audio between the telephone (8 kHz) and realtime speech models (16 or 24 kHz pcm16), one stream at a time.

A realtime model takes and gives little-endian signed 16-bit mono PCM at its
own rate: OpenAI Realtime 24 kHz both ways, Gemini Live 16 kHz in and 24 kHz
out. The call's media is 8 kHz in 20 ms frames. The converters here keep
state across frames (the previous sample, the filter's history), so a stream
resampled frame by frame has no clicks at frame edges, and each frame costs
one small numpy operation (well under a millisecond).
"""

from __future__ import annotations

import base64

import numpy as np

TELEPHONE_RATE = 8000


class Upsampler:
    """8 kHz to ``factor`` x 8 kHz by linear interpolation, continuous across calls."""

    def __init__(self, factor: int) -> None:
        if factor < 1:
            raise ValueError("factor must be a positive integer")
        self.factor = factor
        self._last = 0.0
        self._steps = np.arange(1, factor + 1) / factor  # positions between the previous sample and each new one

    def __call__(self, pcm: np.ndarray) -> np.ndarray:
        if self.factor == 1 or len(pcm) == 0:
            return pcm.astype(np.int16, copy=False)
        x = pcm.astype(np.float64)
        previous = np.concatenate(([self._last], x[:-1]))
        y = previous[:, None] + (x - previous)[:, None] * self._steps[None, :]
        self._last = float(x[-1])
        return np.clip(np.round(y.reshape(-1)), -32768, 32767).astype(np.int16)


class Downsampler:
    """``factor`` x 8 kHz down to 8 kHz: a windowed-sinc low-pass (kept across calls), then every ``factor``-th sample."""

    def __init__(self, factor: int, taps: int = 48) -> None:
        if factor < 1:
            raise ValueError("factor must be a positive integer")
        self.factor = factor
        n = np.arange(taps) - (taps - 1) / 2
        kernel = np.sinc(2 * (0.45 / factor) * n) * np.hamming(taps)
        self._kernel = kernel / kernel.sum()
        self._history = np.zeros(taps - 1)
        self._phase = 0  # input samples to skip before the next kept one

    def __call__(self, pcm: np.ndarray) -> np.ndarray:
        if self.factor == 1 or len(pcm) == 0:
            return pcm.astype(np.int16, copy=False)
        x = np.concatenate((self._history, pcm.astype(np.float64)))
        filtered = np.convolve(x, self._kernel, mode="valid")  # one output per new input sample
        self._history = x[len(x) - len(self._history):]
        kept = filtered[self._phase::self.factor]
        self._phase = (self._phase - len(filtered)) % self.factor
        return np.clip(np.round(kept), -32768, 32767).astype(np.int16)


def factor_for(model_rate: int) -> int:
    if model_rate % TELEPHONE_RATE:
        raise ValueError(f"a realtime model's rate must be a multiple of 8000 Hz, not {model_rate}")
    return model_rate // TELEPHONE_RATE


def pcm16_b64(pcm: np.ndarray) -> str:
    """int16 samples as the base64 of little-endian pcm16 (what the providers' JSON carries)."""
    return base64.b64encode(pcm.astype("<i2", copy=False).tobytes()).decode("ascii")


def b64_pcm16(data: str) -> np.ndarray:
    raw = base64.b64decode(data)
    return np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.int16)
