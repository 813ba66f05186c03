"""Per-turn voice latency: from the end of the callee's speech to our first audio, by stage.

An audio line fills one ``TurnLatency`` per reply: when it hears an utterance
(how long the endpointer waited after the speech ended, how long the STT
took), when the brain reports its model's time to first token, and when the
reply's first audio goes out (how long the TTS took to render it, and the
total on the line's media timeline). The report is the call's ``latency``
(ext) key and feeds ``/metrics``.

Two instants on the line's timeline (ms since answer, finer than a frame
where the channel knows it) say what held a reply, for a pipeline that
prepares the reply while the turn is still open (speculation): when the
turn-taking gate let it play (``gate_open_ms``: the callee quiet for the turn
silence with no "incomplete" verdict, or the turn closed) and when its first
audio was in hand (``audio_ready_ms``: end of the endpointer's lag, the early
STT delay, STT, the model and the TTS's first audio). The first audio cannot
leave before the later of the two; what it takes beyond that is the
pipeline's own cost (bench/voice.py's "framework" row). They are not part of
the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STAGES = ("endpointingMs", "sttMs", "llmFirstTokenMs", "ttsFirstAudioMs", "totalMs")


@dataclass
class TurnLatency:
    speech_end_ms: int  # on the line's timeline
    endpointing_ms: int
    stt_ms: int
    llm_first_token_ms: int | None = None
    tts_first_audio_ms: int | None = None
    total_ms: int | None = None
    gate_open_ms: float | None = None  # when turn-taking let the reply play (timeline ms)
    audio_ready_ms: float | None = None  # when the reply's first audio was in hand (timeline ms)

    def to_json(self) -> dict[str, Any]:
        return {"speechEndMs": self.speech_end_ms, "endpointingMs": self.endpointing_ms, "sttMs": self.stt_ms,
                "llmFirstTokenMs": self.llm_first_token_ms, "ttsFirstAudioMs": self.tts_first_audio_ms,
                "totalMs": self.total_ms}


def percentile(values: list[int], p: float) -> int:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


class LatencyLog:
    """The turns of one call; a turn counts once the agent's reply to it has started playing."""

    def __init__(self) -> None:
        self.turns: list[TurnLatency] = []
        self._pending: TurnLatency | None = None

    def heard(self, speech_end_ms: int, endpointing_ms: int, stt_ms: int, gate_open_ms: float | None = None) -> None:
        self._pending = TurnLatency(speech_end_ms, max(0, endpointing_ms), max(0, stt_ms), gate_open_ms=gate_open_ms)

    def model_replied(self, first_token_ms: float | None) -> None:
        if self._pending is not None and first_token_ms is not None and self._pending.llm_first_token_ms is None:
            self._pending.llm_first_token_ms = round(first_token_ms)

    def spoke(self, first_audio_at_ms: int, tts_first_audio_ms: float, gate_open_ms: float | None = None,
              audio_ready_ms: float | None = None) -> None:
        """The reply's first audio is going out; ``gate_open_ms`` (when later than the turn closing) and
        ``audio_ready_ms`` are the instants in the module docstring."""
        turn, self._pending = self._pending, None
        if turn is None:
            return  # not a reply to something heard (a greeting, a nudge after silence)
        if gate_open_ms is not None:
            turn.gate_open_ms = max(gate_open_ms, turn.gate_open_ms or gate_open_ms)
        turn.audio_ready_ms = audio_ready_ms
        turn.tts_first_audio_ms = round(tts_first_audio_ms)
        turn.total_ms = max(0, first_audio_at_ms - turn.speech_end_ms)
        self.turns.append(turn)

    def forget_pending(self) -> None:
        """What was heard got no reply (the line went quiet, a beep, another utterance first)."""
        self._pending = None

    def report(self) -> dict[str, Any] | None:
        if not self.turns:
            return None
        summary: dict[str, Any] = {"turns": [t.to_json() for t in self.turns]}
        for label, p in (("p50", 50), ("p90", 90)):
            figures = {}
            for stage in STAGES:
                values = [t[stage] for t in summary["turns"] if t[stage] is not None]
                figures[stage] = percentile(values, p) if values else None
            summary[label] = figures
        return summary
