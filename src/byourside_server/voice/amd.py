"""Answering-machine detection from the cadence of what answers (after Asterisk's AMD application).

A person answers with a short greeting ("Hello?", "Copper Pot, hi") and then
waits for the caller; a machine plays a long, unbroken greeting. Fed one
20 ms frame at a time from the moment of answer, the detector decides:

- ``human``: a greeting of at most ``greeting_ms`` followed by
  ``after_greeting_silence_ms`` of silence (usually within 2-3 s of answer);
- ``machine``: a greeting longer than ``greeting_ms``, more than
  ``max_words`` words before a pause, or a record tone;
- ``unknown``: nobody spoke for ``initial_silence_ms``, or nothing decided
  within ``total_analysis_ms``.

Receptionists with long scripted greetings sound like machines here, so the
verdict is a hint for the brain next to the transcript, not a decision on its
own. A frame is voiced when its mean absolute amplitude exceeds
``silence_threshold`` (telephone audio, 16-bit PCM).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from byourside_server.voice.audio import FRAME_MS


@dataclass(frozen=True)
class AmdVerdict:
    kind: str  # "human", "machine" or "unknown"
    cause: str  # short token: greeting_then_silence, long_greeting, max_words, beep, initial_silence, too_long
    decided_ms: int  # ms after answer

    def to_json(self) -> dict[str, object]:
        return {"verdict": self.kind, "cause": self.cause, "decidedMs": self.decided_ms}


class AnsweringMachineDetector:
    def __init__(self, *, initial_silence_ms: int = 2500, greeting_ms: int = 1500,
                 after_greeting_silence_ms: int = 800, total_analysis_ms: int = 5000, min_word_ms: int = 100,
                 between_words_silence_ms: int = 60, max_words: int = 3, silence_threshold: float = 256) -> None:
        self.initial_silence_ms, self.greeting_ms = initial_silence_ms, greeting_ms
        self.after_greeting_silence_ms, self.total_analysis_ms = after_greeting_silence_ms, total_analysis_ms
        self.min_word_ms, self.between_words_silence_ms = min_word_ms, between_words_silence_ms
        self.max_words, self.silence_threshold = max_words, silence_threshold
        self.verdict: AmdVerdict | None = None
        self._ms = 0
        self._voiced_run = 0
        self._silent_run = 0
        self._words = 0
        self._in_word = False
        self._speech_started_at: int | None = None

    @property
    def speech_started_ms(self) -> int | None:
        """Where (ms after answer) the greeting's first word began; None before anyone spoke."""
        return self._speech_started_at

    def feed(self, frame: np.ndarray) -> AmdVerdict | None:
        """Feed the next frame of the callee's audio; the verdict once (and only when) it is reached."""
        if self.verdict is not None:
            return None
        self._ms += FRAME_MS
        voiced = float(np.mean(np.abs(frame.astype(np.int32)))) > self.silence_threshold
        if voiced:
            self._voiced_run += FRAME_MS
            self._silent_run = 0
            if not self._in_word and self._voiced_run >= self.min_word_ms:
                self._in_word = True
                self._words += 1
                if self._speech_started_at is None:
                    self._speech_started_at = self._ms - self._voiced_run
        else:
            self._silent_run += FRAME_MS
            if self._silent_run >= self.between_words_silence_ms:
                self._in_word, self._voiced_run = False, 0
        return self._decide()

    def beep(self) -> AmdVerdict | None:
        """A record tone was heard: that is a machine."""
        if self.verdict is None:
            return self._set("machine", "beep")
        return None

    def _decide(self) -> AmdVerdict | None:
        if self._speech_started_at is None:
            if self._ms >= self.initial_silence_ms:
                return self._set("unknown", "initial_silence")
            return None
        greeting_so_far = self._ms - self._speech_started_at - self._silent_run
        if self._words > self.max_words:
            return self._set("machine", "max_words")
        if self._silent_run >= self.after_greeting_silence_ms and greeting_so_far <= self.greeting_ms:
            return self._set("human", "greeting_then_silence")
        if self._silent_run == 0 and greeting_so_far > self.greeting_ms:
            return self._set("machine", "long_greeting")
        if self._ms >= self.total_analysis_ms:
            return self._set("unknown", "too_long")
        return None

    def _set(self, kind: str, cause: str) -> AmdVerdict:
        self.verdict = AmdVerdict(kind, cause, self._ms)
        return self.verdict
