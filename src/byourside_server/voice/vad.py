"""Voice activity detection and endpointing on 20 ms telephone frames.

webrtcvad classifies each frame; the endpointer turns that into utterances:
speech starts after ``start_frames`` voiced frames out of the last
``start_window`` (so a click is not speech) and ends after ``end_silence_ms``
of continuous non-speech, long enough that a pause inside a sentence does not
cut it. A short pre-roll keeps the first syllable.

With a turn detector (voice/turn.py) a turn can end sooner: once per silence
the detector is asked whether the turn is complete; if it is, the utterance
closes when the silence has lasted ``turn_silence_ms`` (or when the answer
arrives, if later), otherwise the endpointer keeps listening and
``end_silence_ms`` remains the latest end. The question runs on an executor
(one shared worker thread by default) because the model takes tens of
milliseconds and ``feed`` runs on the 20 ms media ticker; it is asked
``turn_ask_ahead_ms`` before ``turn_silence_ms`` so the answer is usually in by
then, and each ``feed`` only checks whether it has arrived. Speech before the
turn closes makes the answer stale.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import structlog

from byourside_server.voice.audio import FRAME_MS, TELEPHONE_RATE
from byourside_server.voice.turn import TurnDetector

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Utterance:
    pcm: np.ndarray  # 8 kHz int16
    start_ms: int
    end_ms: int
    ended_by: str = "silence"  # "silence" (end_silence_ms), "turn" (the turn detector), "length" or "flush"


def webrtc_classifier(aggressiveness: int = 2) -> Callable[[np.ndarray], bool]:
    import webrtcvad

    vad = webrtcvad.Vad(aggressiveness)
    return lambda frame: vad.is_speech(frame.tobytes(), TELEPHONE_RATE)


class LevelGate:
    """A frame classifier, but a frame quieter than ``floor_dbfs`` (RMS) is never speech.

    webrtcvad (and Silero) keep calling frames speech for 100-300 ms after the last word (hang-over,
    and breath and decay they cannot tell from a voice); on a telephone line speech is louder than
    about -35 dBFS and the pause after it is the line's noise floor, so a level gate lets the
    endpointer start counting silence where the speech ended. The classifier still hears every
    frame, so its own state (noise estimate, hang-over) stays what it would be without the gate.
    """

    def __init__(self, classifier: Callable[[np.ndarray], bool], floor_dbfs: float) -> None:
        self.classifier = classifier
        self.floor = 32768.0 * 10 ** (floor_dbfs / 20)

    def __call__(self, frame: np.ndarray) -> bool:
        voiced = self.classifier(frame)
        samples = frame.astype(np.float64)
        return bool(voiced) and float(np.sqrt(np.mean(samples * samples))) >= self.floor


_turn_executor: ThreadPoolExecutor | None = None
_turn_executor_lock = threading.Lock()


def turn_executor() -> ThreadPoolExecutor:
    """The worker thread every endpointer's turn questions share (one at a time: they are CPU bound)."""
    global _turn_executor
    with _turn_executor_lock:
        if _turn_executor is None:
            _turn_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="turn-detector")
        return _turn_executor


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
        turn_detector: TurnDetector | None = None,
        turn_silence_ms: int = 200,
        turn_threshold: float = 0.5,
        executor: Executor | None = None,
        turn_ask_ahead_ms: int = 60,
    ) -> None:
        self.is_speech = is_speech
        self.end_frames = max(1, end_silence_ms // FRAME_MS)
        self.turn_detector = turn_detector
        self.turn_frames = max(1, turn_silence_ms // FRAME_MS)
        # Asked this much before the turn may close, so the model's answer is usually in by then.
        self.ask_frames = max(1, self.turn_frames - turn_ask_ahead_ms // FRAME_MS)
        self.turn_threshold = turn_threshold
        self._executor = executor
        self._question: Future[float] | None = None  # asked in the current silence
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
            self._question = None  # the callee went on: an answer about the pause is stale
        else:
            self._silent_run += 1
        if self._silent_run >= self.end_frames:
            return self._close("silence")
        if len(self._frames) >= self.max_frames:
            return self._close("length")
        if self._turn_is_complete():
            return self._close("turn")
        return None

    @property
    def speech_start_ms(self) -> int | None:
        """Where the turn in progress began (its pre-roll included); None between turns."""
        return self._start_index * FRAME_MS if self.in_speech else None

    @property
    def silent_ms(self) -> int:
        """Continuous non-speech at the end of the turn in progress (0 between turns)."""
        return self._silent_run * FRAME_MS if self.in_speech else 0

    @property
    def turn_silence_ms(self) -> int | None:
        """Silence after which the turn detector may close a turn (None: no detector)."""
        return self.turn_frames * FRAME_MS if self.turn_detector is not None else None

    @property
    def judged_incomplete(self) -> bool:
        """The turn detector, asked in the current silence, has answered that the turn goes on."""
        question = self._question
        return (question is not None and question.done() and question.exception() is None
                and question.result() < self.turn_threshold)

    def pending(self) -> Utterance | None:
        """The turn in progress as it would close now (closing silence dropped), without closing it."""
        if not self.in_speech or self._voiced < self.min_frames:
            return None
        keep = max(1, len(self._frames) - self._silent_run)
        start_ms = self._start_index * FRAME_MS
        return Utterance(np.concatenate(self._frames[:keep]), start_ms, start_ms + keep * FRAME_MS, "pending")

    def flush(self) -> Utterance | None:
        """End the turn in progress now (the line closed mid-sentence); None between turns."""
        return self._close("flush") if self.in_speech else None

    def _turn_is_complete(self) -> bool:
        """True once a silence has lasted ``turn_silence_ms`` and the detector, asked once in it, says complete."""
        if self.turn_detector is None:
            return False
        if self._question is None:
            if self._silent_run != self.ask_frames or self._voiced < self.min_frames:
                return False
            executor = self._executor or turn_executor()
            self._question = executor.submit(self.turn_detector.probability, np.concatenate(self._frames))
        if self._silent_run < self.turn_frames or not self._question.done():
            return False
        error = self._question.exception()
        if error is not None:
            log.warning("turn_detector_failed", error=repr(error))
            return False  # the silence fallback still ends the turn
        return self._question.result() >= self.turn_threshold

    def _close(self, ended_by: str) -> Utterance | None:
        frames, voiced, trailing = self._frames, self._voiced, self._silent_run
        self.in_speech, self._frames, self._voiced, self._silent_run = False, [], 0, 0
        self._question = None
        if voiced < self.min_frames:
            return None
        keep = max(1, len(frames) - trailing)  # the closing silence is not part of the turn
        start_ms = self._start_index * FRAME_MS
        return Utterance(np.concatenate(frames[:keep]), start_ms, start_ms + keep * FRAME_MS, ended_by)
