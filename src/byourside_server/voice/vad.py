"""Voice activity detection and endpointing on 20 ms telephone frames.

webrtcvad classifies each frame; the endpointer turns that into utterances:
speech starts after ``start_frames`` voiced frames out of the last
``start_window`` (so a click is not speech) and ends after ``end_silence_ms``
of continuous non-speech, long enough that a pause inside a sentence does not
cut it. A short pre-roll keeps the first syllable.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from byourside_server.voice.audio import FRAME_MS, TELEPHONE_RATE


@dataclass(frozen=True)
class Utterance:
    pcm: np.ndarray  # 8 kHz int16
    start_ms: int
    end_ms: int


def webrtc_classifier(aggressiveness: int = 2) -> Callable[[np.ndarray], bool]:
    import webrtcvad

    vad = webrtcvad.Vad(aggressiveness)
    return lambda frame: vad.is_speech(frame.tobytes(), TELEPHONE_RATE)


class Endpointer:
    def __init__(
        self,
        is_speech: Callable[[np.ndarray], bool],
        end_silence_ms: int = 700,
        start_frames: int = 3,
        start_window: int = 5,
        preroll_ms: int = 200,
        min_speech_ms: int = 200,
        max_utterance_ms: int = 30_000,
    ) -> None:
        self.is_speech = is_speech
        self.end_frames = max(1, end_silence_ms // FRAME_MS)
        self.start_frames = start_frames
        self.min_frames = max(1, min_speech_ms // FRAME_MS)
        self.max_frames = max_utterance_ms // FRAME_MS
        self._recent: collections.deque[tuple[np.ndarray, bool]] = collections.deque(
            maxlen=max(start_window, preroll_ms // FRAME_MS))
        self._start_window = start_window
        self._frames: list[np.ndarray] = []
        self._voiced = 0
        self._silent_run = 0
        self._start_index = 0
        self._index = 0
        self.in_speech = False

    @property
    def voiced_ms(self) -> int:
        """Voiced time in the turn in progress (0 between turns); drives barge-in."""
        return self._voiced * FRAME_MS if self.in_speech else 0

    def feed(self, frame: np.ndarray) -> Utterance | None:
        """Feed one 20 ms frame; returns an utterance when one has just ended."""
        voiced = bool(self.is_speech(frame))
        index = self._index
        self._index += 1
        if not self.in_speech:
            self._recent.append((frame, voiced))
            window = list(self._recent)[-self._start_window:]
            if sum(v for _, v in window) >= self.start_frames:
                self.in_speech = True
                self._frames = [f for f, _ in self._recent]
                self._start_index = index + 1 - len(self._frames)
                self._voiced = sum(v for _, v in self._recent)
                self._silent_run = 0
                self._recent.clear()
            return None
        self._frames.append(frame)
        if voiced:
            self._voiced += 1
            self._silent_run = 0
        else:
            self._silent_run += 1
        if self._silent_run >= self.end_frames or len(self._frames) >= self.max_frames:
            return self._close()
        return None

    def _close(self) -> Utterance | None:
        frames, voiced, trailing = self._frames, self._voiced, self._silent_run
        self.in_speech, self._frames, self._voiced, self._silent_run = False, [], 0, 0
        if voiced < self.min_frames:
            return None
        keep = max(1, len(frames) - trailing)  # the closing silence is not part of the turn
        start_ms = self._start_index * FRAME_MS
        return Utterance(np.concatenate(frames[:keep]), start_ms, start_ms + keep * FRAME_MS)
