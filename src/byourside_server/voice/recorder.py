"""Call recording: both sides as one stereo 16-bit WAV (left = callee, right = agent).

Frames arrive from the RTP ticker already aligned (one inbound and one outbound
20 ms frame per tick), so the two channels share one timeline. Writing is
buffered by the ``wave`` module; the file is valid once ``close`` has run.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

from byourside_server.voice.audio import TELEPHONE_RATE


class StereoRecorder:
    def __init__(self, path: Path) -> None:
        # Recordings are personal data: owner-only directory and files.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        self._file = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        self._wav = wave.open(self._file, "wb")
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(TELEPHONE_RATE)
        self.closed = False

    def write(self, callee: np.ndarray, agent: np.ndarray) -> None:
        if self.closed:
            return
        frames = np.empty(len(callee) * 2, dtype="<i2")
        frames[0::2], frames[1::2] = callee, agent
        self._wav.writeframes(frames.tobytes())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._wav.close()
            self._file.close()  # wave leaves a file object it did not open to its owner


def read_stereo(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(callee, agent) channels of a recording."""
    with wave.open(str(path), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return data[0::2].copy(), data[1::2].copy()
