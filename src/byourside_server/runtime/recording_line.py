"""A Line wrapper that records every turn and enforces the call's time limit."""

from __future__ import annotations

from typing import AsyncIterator, Awaitable, Callable, Sequence

from byourside_server.domain import AnsweredBy, AnswerVerdict, Turn
from byourside_server.telephony.base import Line, LineEvent, Silence, Speech, Spoken


# The brain's word for who it talked with (agent/base.py ``AnsweredBy``) in the call's vocabulary.
_CONVERSATION_VERDICTS = {"human": AnsweredBy.HUMAN, "voicemail": AnsweredBy.MACHINE,
                          "screening": AnsweredBy.MACHINE, "ivr": AnsweredBy.IVR}


class CallTimeUp(Exception):
    """The call reached its maximum duration; the runtime ends it."""


class RecordingLine(Line):
    def __init__(
        self,
        inner: Line,
        max_duration_ms: int,
        on_turn: Callable[[Sequence[Turn]], Awaitable[None]] | None = None,
    ) -> None:
        self.inner = inner
        self.max_duration_ms = max_duration_ms
        self.on_turn = on_turn  # called with all turns so far, so observers can show a live transcript
        self.turns: list[Turn] = []
        self.digits_sent: list[str] = []

    async def _record(self, turn: Turn) -> None:
        self.turns.append(turn)
        if self.on_turn is not None:
            await self.on_turn(tuple(self.turns))

    def _check_time(self) -> None:
        if self.inner.elapsed_ms() >= self.max_duration_ms:
            raise CallTimeUp()

    async def _record_said(self, text: str, spoken: Spoken) -> None:
        """Only what reached the callee is in the transcript; a reply dropped before it was heard is not."""
        heard = spoken.heard_of(text)
        if heard or not spoken.interrupted:
            await self._record(Turn("agent", heard, spoken.start_ms, spoken.end_ms, interrupted=spoken.interrupted))

    async def say(self, text: str) -> Spoken:
        self._check_time()
        spoken = await self.inner.say(text)
        await self._record_said(text, spoken)
        return spoken

    @property
    def streams_speech(self) -> bool:
        return self.inner.streams_speech

    async def say_stream(self, pieces: AsyncIterator[str]) -> tuple[str, Spoken]:
        self._check_time()
        text, spoken = await self.inner.say_stream(pieces)
        if text:
            await self._record_said(text, spoken)
        return text, spoken

    async def say_final(self, text: str) -> None:
        """Speak a closing line even though the time limit has passed."""
        spoken = await self.inner.say(text)
        await self._record_said(text, spoken)

    async def listen(self, timeout_seconds: float) -> LineEvent:
        self._check_time()
        remaining = (self.max_duration_ms - self.inner.elapsed_ms()) / 1000
        event = await self.inner.listen(max(0.0, min(timeout_seconds, remaining)))
        if isinstance(event, Speech):
            await self._record(Turn("contact", event.text, event.start_ms, event.end_ms))
        elif isinstance(event, Silence) and self.inner.elapsed_ms() >= self.max_duration_ms:
            raise CallTimeUp()
        return event

    async def send_digits(self, digits: str) -> None:
        self._check_time()
        await self.inner.send_digits(digits)
        self.digits_sent.append(digits)

    async def hangup(self) -> None:
        await self.inner.hangup()

    async def transfer(self, to: str, brief: str | None = None) -> None:
        await self.inner.transfer(to, brief)

    def elapsed_ms(self) -> int:
        return self.inner.elapsed_ms()

    def recording_path(self) -> str | None:
        return self.inner.recording_path()

    def note_model_latency(self, first_token_ms: float | None) -> None:
        self.inner.note_model_latency(first_token_ms)

    def latency_report(self) -> dict | None:
        return self.inner.latency_report()

    def answering_machine_hint(self) -> str | None:
        return self.inner.answering_machine_hint()

    def answered_by(self) -> AnswerVerdict | None:
        return self.inner.answered_by()

    def answer_verdict(self, conversation: str) -> AnswerVerdict:
        """Who answered, for the call's ``answeredBy``, given the brain's own word (``conversation``).

        A carrier's or the simulator's verdict stands. Otherwise what was said outweighs the cadence of
        the answer (a receptionist's long scripted greeting sounds like a machine), and the cadence
        decides only when the brain could not tell; its evidence is kept either way.
        """
        line = self.inner.answered_by()
        if line is not None and line.source != "cadence" and line.kind is not AnsweredBy.UNKNOWN:
            return line
        kind = _CONVERSATION_VERDICTS.get(conversation, AnsweredBy.UNKNOWN)
        if kind is AnsweredBy.UNKNOWN and line is not None:
            return line
        evidence: dict = {"source": "conversation", "brain": conversation}
        if line is not None:
            evidence[line.source] = dict(line.evidence)
        return AnswerVerdict(kind, evidence)


__all__ = ["RecordingLine", "CallTimeUp"]
