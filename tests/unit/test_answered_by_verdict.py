"""Who answered (the call's answeredBy): a line's verdict weighed against the brain's own word."""

from __future__ import annotations

import pytest

from byourside_server.domain import AnsweredBy, AnswerVerdict
from byourside_server.runtime.recording_line import RecordingLine
from fakes import FakeLine

CADENCE_MACHINE = AnswerVerdict(AnsweredBy.MACHINE, {"source": "cadence", "verdict": "machine",
                                                     "cause": "long_greeting", "decidedMs": 1520})


class JudgedLine(FakeLine):
    """A fake line that comes with a verdict of its own, as a carrier's AMD or the voice engine gives one."""

    def __init__(self, verdict: AnswerVerdict | None) -> None:
        super().__init__()
        self.verdict = verdict

    def answered_by(self) -> AnswerVerdict | None:
        return self.verdict


def judged(line_verdict: AnswerVerdict | None, brain: str) -> AnswerVerdict:
    return RecordingLine(JudgedLine(line_verdict), 60_000).answer_verdict(brain)


def test_a_carrier_or_simulator_verdict_stands_whatever_the_brain_says():
    carrier = AnswerVerdict(AnsweredBy.MACHINE, {"source": "carrier", "carrierAnsweredBy": "machine_start"})
    assert judged(carrier, "human") == carrier
    simulator = AnswerVerdict(AnsweredBy.IVR, {"source": "simulator", "scenario": "ivr"})
    assert judged(simulator, "unknown") == simulator


def test_what_was_said_outweighs_the_cadence_and_keeps_its_figures():
    verdict = judged(CADENCE_MACHINE, "human")  # a receptionist's long scripted greeting
    assert verdict.kind is AnsweredBy.HUMAN
    assert verdict.evidence == {"source": "conversation", "brain": "human", "cadence": dict(CADENCE_MACHINE.evidence)}


@pytest.mark.parametrize(("brain", "kind"), [("voicemail", AnsweredBy.MACHINE), ("screening", AnsweredBy.MACHINE),
                                             ("ivr", AnsweredBy.IVR), ("human", AnsweredBy.HUMAN)])
def test_the_brains_words_map_to_the_calls_vocabulary(brain, kind):
    assert judged(None, brain) == AnswerVerdict(kind, {"source": "conversation", "brain": brain})


def test_the_cadence_decides_only_when_the_brain_could_not_tell():
    assert judged(CADENCE_MACHINE, "unknown") == CADENCE_MACHINE
    assert judged(None, "unknown") == AnswerVerdict(AnsweredBy.UNKNOWN, {"source": "conversation", "brain": "unknown"})
    carrier_unsure = AnswerVerdict(AnsweredBy.UNKNOWN, {"source": "carrier"})
    assert judged(carrier_unsure, "voicemail").kind is AnsweredBy.MACHINE

