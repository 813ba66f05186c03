"""The phone simulator as a telephony provider.

Every call keeps its own virtual timeline in milliseconds: ringing, speech (about
2.7 words a second, for both sides), thinking pauses and silences advance it,
and all times the line reports are on it. The provider also waits for real on
the injected clock, ``virtual seconds * time_scale`` (1.0 is real time, 0.1 ten
times faster, 0 instant), so a demo call feels like a call and a test takes no
time at all.

A transfer to a person (``Line.transfer``) dials the target's scenario the same
way: a line that answers takes the call (a warm transfer's brief is spoken to
it first); busy, no answer, decline or failure leave the callee with us.
Each transfer that went through is noted in ``SimulatorTelephony.transfers``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from byourside_server.clock import Clock
from byourside_server.domain import AnsweredBy, AnswerVerdict
from byourside_server.telephony.base import (
    Beep, CalleeHungUp, DialOutcome, DialRequest, DialResult, HangUp, Line, LineEvent, Silence, Speech, Spoken,
    Telephony, TransferFailed,
)
from byourside_server.telephony.simulator.responders import PersonaFactory, PersonaResponder, responder_for
from byourside_server.telephony.simulator.scenarios import ScenarioBook
from byourside_server.telephony.simulator.script import Action, Flush, Hang, Responder, Say, Tone

log = structlog.get_logger(__name__)

# Who answers, by scenario kind: a call screener is an automated assistant, as a voicemail is.
ANSWERED_BY = {"persona": AnsweredBy.HUMAN, "voicemail": AnsweredBy.MACHINE, "screening": AnsweredBy.MACHINE,
               "ivr": AnsweredBy.IVR, "silent": AnsweredBy.UNKNOWN}
WORDS_PER_SECOND = 2.7
TONE_MS = 500
DIGIT_MS = 250  # one DTMF tone and the gap after it


# How a transfer to a scenario that does not answer fails (``TransferFailed.reason``).
TRANSFER_NOT_TAKEN = {"busy": "busy", "no_answer": "no_answer", "decline": "declined", "failure": "failed"}
TRANSFER_RING_SECONDS = 30.0  # a transfer target that never answers rings this long


@dataclass(frozen=True)
class SimulatedTransfer:
    """A transfer the simulator put through: to whom, and the brief the person heard (None: cold)."""

    call_id: str
    to: str
    brief: str | None
    at_ms: int


def speech_ms(text: str) -> int:
    return max(400, round(len(text.split()) / WORDS_PER_SECOND * 1000))


def _start(event: LineEvent) -> int:
    return event.start_ms if isinstance(event, (Speech, Silence)) else event.at_ms


def _end(event: LineEvent) -> int:
    if isinstance(event, (Speech, Silence)):
        return event.end_ms
    return event.at_ms + (TONE_MS if isinstance(event, Beep) else 0)


class SimulatedLine(Line):
    """An answered simulated call: the caller's side of a conversation with a responder."""

    def __init__(self, responder: Responder, clock: Clock, time_scale: float = 1.0,
                 answered: AnswerVerdict | None = None,
                 transfer_target: Callable[[str], tuple[float, str | None]] | None = None,
                 on_transfer: Callable[[str, str | None, int], None] | None = None) -> None:
        self._responder = responder
        self._transfer_target = transfer_target  # number -> (ring seconds, failure reason or None: answered)
        self._on_transfer = on_transfer
        self._answered = answered  # who the scenario put on the line
        self._clock = clock
        self._scale = time_scale
        self._now = 0
        self._queue: list[LineEvent] = []  # what the callee will do, in time order, not yet heard
        self._closed_at: int | None = None
        self._quiet_since = 0  # end of the last thing either side said or keyed
        self._schedule(responder.on_answer(), 0)

    @property
    def closed(self) -> bool:
        return self._closed_at is not None

    def elapsed_ms(self) -> int:
        return self._now

    async def _advance(self, to_ms: int) -> None:
        delta = max(0, to_ms - self._now)
        self._now += delta
        await self._clock.sleep(delta / 1000 * self._scale)

    def _schedule(self, actions: list[Action], base_ms: int) -> None:
        t = max(base_ms, self._now, max((_end(e) for e in self._queue), default=0))
        for action in actions:
            if isinstance(action, Flush):
                self._queue = [e for e in self._queue if isinstance(e, HangUp)]
                t = max(base_ms, self._now)
                continue
            t += round(action.pause * 1000)
            if isinstance(action, Say):
                self._queue.append(Speech(action.text, t, t + speech_ms(action.text)))
            elif isinstance(action, Tone):
                self._queue.append(Beep(t))
            elif isinstance(action, Hang):
                self._queue.append(HangUp(t))
            t = _end(self._queue[-1])

    def _close(self, at_ms: int) -> None:
        if self._closed_at is None:
            self._closed_at = at_ms
        self._queue.clear()

    async def say(self, text: str) -> Spoken:
        if self._closed_at is not None:
            raise CalleeHungUp(self._closed_at)
        start, end = self._now, self._now + speech_ms(text)
        hang = next((e for e in self._queue if isinstance(e, HangUp) and e.at_ms <= end), None)
        if hang is not None:  # they hang up before or while we speak
            await self._advance(hang.at_ms)
            self._close(max(hang.at_ms, start))
            raise CalleeHungUp(self._closed_at or start)
        await self._advance(end)
        self._quiet_since = end
        actions = self._responder.on_speech(text)
        if inspect.isawaitable(actions):  # a model-driven persona thinks asynchronously
            actions = await actions
        self._schedule(actions, end)
        return Spoken(start_ms=start, end_ms=end)

    async def listen(self, timeout_seconds: float) -> LineEvent:
        if self._closed_at is not None:
            return HangUp(self._closed_at)
        start = self._now
        deadline = start + round(max(0.0, timeout_seconds) * 1000)
        if not self._queue:
            idle = self._responder.idle_after()
            fires_at = None if idle is None else max(self._quiet_since + round(idle * 1000), start)
            if fires_at is not None and fires_at <= deadline:
                self._schedule(self._responder.on_idle(), fires_at)
        if self._queue and _start(self._queue[0]) <= deadline:
            event = self._queue.pop(0)
            await self._advance(_end(event))
            if isinstance(event, HangUp):
                self._close(event.at_ms)
            else:
                self._quiet_since = _end(event)
            return event
        await self._advance(deadline)
        return Silence(start_ms=start, end_ms=deadline)

    async def send_digits(self, digits: str) -> None:
        if self._closed_at is not None:
            raise CalleeHungUp(self._closed_at)
        await self._advance(self._now + DIGIT_MS * len(digits))
        self._quiet_since = self._now
        self._schedule(self._responder.on_digits(digits), self._now)

    def answered_by(self) -> AnswerVerdict | None:
        return self._answered

    async def transfer(self, to: str, brief: str | None = None) -> None:
        if self._transfer_target is None:
            raise TransferFailed("unsupported")
        if self._closed_at is not None:
            raise TransferFailed("call_ended")
        ring_seconds, failure = self._transfer_target(to)
        hang = next((e for e in self._queue if isinstance(e, HangUp)), None)
        if hang is not None and hang.at_ms <= self._now + round(ring_seconds * 1000):
            await self._advance(hang.at_ms)  # the callee gave up waiting
            self._close(hang.at_ms)
            raise TransferFailed("call_ended")
        await self._advance(self._now + round(ring_seconds * 1000))
        if failure is not None:
            raise TransferFailed(failure)
        if brief:
            await self._advance(self._now + speech_ms(brief))  # the person hears the brief, then is connected
        if self._on_transfer is not None:
            self._on_transfer(to, brief, self._now)
        self._close(self._now)

    async def hangup(self) -> None:
        self._close(self._now)


class SimulatorTelephony(Telephony):
    """Dials scenarios instead of phones; see ``scenarios.yaml`` for the number plan."""

    name = "simulator"

    def __init__(self, book: ScenarioBook, clock: Clock, *, time_scale: float = 1.0,
                 persona_factory: PersonaFactory = PersonaResponder) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        self._persona_factory = persona_factory
        self._book = book
        self._clock = clock
        self._scale = time_scale
        self.transfers: list[SimulatedTransfer] = []

    def _transfer_target(self, number: str) -> tuple[float, str | None]:
        """How a transfer to ``number`` goes: (seconds it rings, why it fails or None when it is answered)."""
        scenario = self._book.for_number(number)
        if scenario is None:
            return 0.0, "failed"
        if scenario.kind == "no_answer":
            return TRANSFER_RING_SECONDS, "no_answer"
        return scenario.ring_seconds, TRANSFER_NOT_TAKEN.get(scenario.kind)

    async def _ring(self, seconds: float) -> None:
        await self._clock.sleep(max(0.0, seconds) * self._scale)

    async def dial(self, request: DialRequest) -> DialOutcome:
        scenario = self._book.for_number(request.to)
        if scenario is None:
            log.info("simulator_dial", call_id=request.call_id, scenario=None)
            return DialOutcome(DialResult.FAILED, reason="simulator_unknown_number")
        log.info("simulator_dial", call_id=request.call_id, scenario=self._book.name_for(request.to))
        kind = scenario.kind
        if kind == "failure":
            await self._ring(scenario.ring_seconds)
            return DialOutcome(DialResult.FAILED, reason=scenario.failure_reason)
        if kind == "busy":
            await self._ring(scenario.ring_seconds)
            return DialOutcome(DialResult.BUSY, reason="busy")
        if kind == "no_answer" or scenario.ring_seconds >= request.ring_timeout_seconds:
            await self._ring(request.ring_timeout_seconds)
            return DialOutcome(DialResult.NO_ANSWER, reason="ring_timeout")
        await self._ring(scenario.ring_seconds)
        if kind == "decline":
            return DialOutcome(DialResult.DECLINED, reason="callee_declined")
        answered = AnswerVerdict(ANSWERED_BY.get(kind, AnsweredBy.UNKNOWN), {"source": "simulator", "scenario": kind})
        def transferred(to: str, brief: str | None, at_ms: int) -> None:
            self.transfers.append(SimulatedTransfer(request.call_id, to, brief, at_ms))

        line = SimulatedLine(responder_for(scenario, self._persona_factory), self._clock, self._scale, answered,
                             transfer_target=self._transfer_target, on_transfer=transferred)
        return DialOutcome(DialResult.ANSWERED, line=line)
