"""Fake providers for runtime tests: real classes implementing the ports, no patching."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Sequence

from byourside_server.agent.base import OBJECTIVE_MET, Analysis, Brain, ConversationEnd
from byourside_server.domain import CallTask, Turn
from byourside_server.voice.latency import LatencyLog
from byourside_server.telephony.base import (
    CalleeHungUp,
    DialOutcome,
    DialRequest,
    DialResult,
    HangUp,
    Line,
    LineEvent,
    Silence,
    Speech,
    Spoken,
    Telephony,
)


class FakeLine(Line):
    """A line whose callee answers each agent utterance with the next scripted reply.

    Every say/listen advances the virtual clock by ``step_ms``. With ``reply_latency_ms`` it acts as an
    audio line: each reply to something heard starts that long after the callee stopped, and the line
    reports per-turn latency (endpointing 200 ms, STT 100 ms, TTS first audio 50 ms, plus what the
    brain reports as its model time).
    """

    def __init__(self, replies: Sequence[str] = (), step_ms: int = 1000, reply_latency_ms: int | None = None) -> None:
        self.replies = list(replies)
        self.reply_latency_ms = reply_latency_ms
        self.latency = LatencyLog()
        self.step_ms = step_ms
        self.now_ms = 0
        self.closed = False
        self.hung_up_by_us = False
        self.said: list[str] = []
        self.digits: list[str] = []

    async def say(self, text: str) -> Spoken:
        if self.closed:
            raise CalleeHungUp(self.now_ms)
        if self.reply_latency_ms is not None:
            self.now_ms += self.reply_latency_ms
            self.latency.spoke(self.now_ms, 50)
        start = self.now_ms
        self.now_ms += self.step_ms
        self.said.append(text)
        await asyncio.sleep(0)
        return Spoken(start, self.now_ms)

    async def listen(self, timeout_seconds: float) -> LineEvent:
        await asyncio.sleep(0)
        if self.closed:
            return HangUp(self.now_ms)
        start = self.now_ms
        if self.replies:
            self.now_ms += self.step_ms
            self.latency.heard(self.now_ms, 200, 100)
            return Speech(self.replies.pop(0), start, self.now_ms)
        self.now_ms += int(timeout_seconds * 1000)
        return Silence(start, self.now_ms)

    async def send_digits(self, digits: str) -> None:
        self.digits.append(digits)

    async def hangup(self) -> None:
        self.closed = True
        self.hung_up_by_us = True

    def elapsed_ms(self) -> int:
        return self.now_ms

    def note_model_latency(self, first_token_ms: float | None) -> None:
        self.latency.model_replied(first_token_ms)

    def latency_report(self) -> dict | None:
        return self.latency.report() if self.reply_latency_ms is not None else None


class FakeTelephony(Telephony):
    """Answers every call with a FakeLine unless a number is scripted otherwise; counts dials per call."""

    name = "fake"

    def __init__(self, results: dict[str, DialResult] | None = None, ring_seconds: float = 0.0,
                 replies: Sequence[str] = ("Hello?", "Yes, we open at nine."),
                 reply_latency_ms: int | None = None) -> None:
        self.reply_latency_ms = reply_latency_ms
        self.results = results or {}
        self.ring_seconds = ring_seconds
        self.replies = replies
        self.dials: Counter[str] = Counter()
        self.lines: dict[str, FakeLine] = {}
        self.ringing = asyncio.Event()

    async def dial(self, request: DialRequest) -> DialOutcome:
        self.dials[request.call_id] += 1
        self.ringing.set()
        await asyncio.sleep(self.ring_seconds)
        result = self.results.get(request.to, DialResult.ANSWERED)
        if result is not DialResult.ANSWERED:
            return DialOutcome(result, reason="scripted")
        line = FakeLine(self.replies, reply_latency_ms=self.reply_latency_ms)
        self.lines[request.call_id] = line
        return DialOutcome(DialResult.ANSWERED, line=line)


class EchoBrain(Brain):
    """Greets, listens to each reply until silence, extracts nothing; or loops forever when ``endless``."""

    name = "echo"

    def __init__(self, endless: bool = False, fail: bool = False, pause_seconds: float = 0.0) -> None:
        self.endless = endless
        self.fail = fail
        self.pause_seconds = pause_seconds
        self.started = asyncio.Event()

    async def converse(self, task: CallTask, line: Line) -> ConversationEnd:
        self.started.set()
        if self.fail:
            raise RuntimeError("brain exploded")
        await line.say("Hi, this is an AI assistant.")
        while True:
            if self.pause_seconds:
                await asyncio.sleep(self.pause_seconds)
            event = await line.listen(5)
            if isinstance(event, Speech):
                await line.say("Thanks.")
            elif not self.endless:
                break
        await line.say("Goodbye.")
        await line.hangup()
        return ConversationEnd(OBJECTIVE_MET)

    async def analyze(self, task: CallTask, turns: Sequence[Turn], end: ConversationEnd) -> Analysis:
        return Analysis(
            summary=f"{len(turns)} turns, ended with {end.reason}.",
            extracted={f.name: None for f in task.fields},
            objective_met=end.reason == OBJECTIVE_MET,
        )
