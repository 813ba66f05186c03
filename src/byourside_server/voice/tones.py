"""Answering-machine beep detection on 20 ms telephone frames.

A record tone is a steady, nearly pure tone (usually 400-2000 Hz) lasting a
few hundred milliseconds; speech spreads its energy over many frequencies and
moves from frame to frame. A frame is "tonal" when one narrow band holds most
of its energy; ``min_ms`` of consecutive tonal frames at the same pitch is a
beep, reported once per tone.
"""

from __future__ import annotations

import numpy as np

from byourside_server.voice.audio import FRAME_MS, TELEPHONE_RATE


class BeepDetector:
    def __init__(self, min_ms: int = 160, low_hz: float = 350, high_hz: float = 2100,
                 purity: float = 0.7, min_rms: float = 300) -> None:
        self.min_frames = max(1, min_ms // FRAME_MS)
        self.low_hz, self.high_hz, self.purity, self.min_rms = low_hz, high_hz, purity, min_rms
        self._run = 0
        self._pitch: float | None = None
        self._reported = False
        self._index = 0

    def _tone_of(self, frame: np.ndarray) -> float | None:
        x = frame.astype(np.float64)
        if np.sqrt(np.mean(x * x)) < self.min_rms:
            return None
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=1024)) ** 2
        freqs = np.fft.rfftfreq(1024, 1 / TELEPHONE_RATE)
        peak = int(np.argmax(spectrum))
        band = spectrum[max(0, peak - 6): peak + 7].sum()  # the main lobe of the windowed tone
        if band / spectrum.sum() < self.purity or not self.low_hz <= freqs[peak] <= self.high_hz:
            return None
        return float(freqs[peak])

    @property
    def in_tone(self) -> bool:
        """The last frame was part of a steady tone (a beep in progress, confirmed or not)."""
        return self._run > 0

    def feed(self, frame: np.ndarray) -> int | None:
        """Feed one frame; returns the tone's start (ms on the frame timeline) when a beep is confirmed."""
        index = self._index
        self._index += 1
        pitch = self._tone_of(frame)
        if pitch is None or (self._pitch is not None and abs(pitch - self._pitch) > 40):
            self._run, self._reported = (1, False) if pitch is not None else (0, False)
            self._pitch = pitch
            return None
        self._pitch = pitch if self._pitch is None else self._pitch
        self._run += 1
        if self._run >= self.min_frames and not self._reported:
            self._reported = True
            return (index + 1 - self._run) * FRAME_MS
        return None
