"""A media channel for provider tests: a callee who takes turns with the agent, on a clock that runs by itself.

Each tick (``tick_seconds`` of real time, 20 ms of call time) sends one frame
of what was queued with ``play`` and delivers one frame of the callee's audio.
The callee's utterances are ``Utterance``s: the first starts ``delay_ms`` after
answer; an ``answer`` starts once the agent has spoken since the previous one
and then been quiet for ``delay_ms``; an ``over`` starts ``delay_ms`` into the
agent's speech (a barge-in). So the turns line up the same way however fast the
machine is, and call time may run faster than real time (the fake providers
judge speech by audio position, not by the wall clock). What left, when, and
the digits sent are kept for the test to check.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass

import numpy as np

from byourside_server.telephony.media import FRAME_SAMPLES, AudioFrame, MediaChannel, Playback


def voiced(ms: int, loudness: int = 6000, hz: int = 180) -> np.ndarray:
    """A stretch of "speech" at 8 kHz: a voiced buzz loud enough for any VAD."""
    t = np.arange(ms * 8) / 8000
    return (loudness * np.sign(np.sin(2 * np.pi * hz * t)) * 0.5).astype(np.int16)


def silence(ms: int) -> np.ndarray:
    return np.zeros(ms * 8, dtype=np.int16)


@dataclass(frozen=True)
class Utterance:
    pcm: np.ndarray
    # "answer": once the agent has spoken and gone quiet; "over": while the agent speaks;
    # "pause": ``delay_ms`` after the previous utterance ended, whatever the agent does
    after: str = "answer"
    delay_ms: int = 600


class PacedMedia(MediaChannel):
    def __init__(self, utterances: list[Utterance], *, tick_seconds: float = 0.003,
                 far_end_hangs_up_at_ms: int | None = None) -> None:
        super().__init__()
        self.utterances = collections.deque(utterances)
        self.speaking: np.ndarray | None = None  # the utterance being delivered
        self.started_at_ms: list[int] = []  # when each utterance began
        self._agent_ms = 0  # agent speech since the last utterance ended
        self._quiet_ms = 0  # call time since the agent last had audio queued or leaving
        self._since_ms = 0  # call time since the last utterance ended
        self.tick_seconds = tick_seconds
        self.far_end_hangs_up_at_ms = far_end_hangs_up_at_ms
        self.ticks = 0
        self.queued: collections.deque[tuple[np.ndarray, Playback]] = collections.deque()
        self.outbound: list[np.ndarray] = []  # every frame that left, silence included
        self.cleared_at_ms: list[int] = []
        self.digits_sent: list[str] = []
        self.hung_up_by_us = False
        self._events: asyncio.Queue = asyncio.Queue()
        self._clock = asyncio.get_running_loop().create_task(self._run())

    async def events(self):  # noqa: ANN201
        while (event := await self._events.get()) is not None:
            yield event

    def play(self, pcm: np.ndarray) -> Playback:
        playback = Playback(len(pcm))
        if self.ended.is_set():
            playback.finish()
            return playback
        for start in range(0, len(pcm), FRAME_SAMPLES):
            frame = pcm[start:start + FRAME_SAMPLES]
            self.queued.append((np.pad(frame, (0, FRAME_SAMPLES - len(frame))), playback))
        return playback

    def clear(self) -> None:
        self.cleared_at_ms.append(self.elapsed_ms())
        for _, playback in self.queued:
            playback.finish()
        self.queued.clear()

    def mark(self) -> asyncio.Future[None]:
        raise NotImplementedError

    async def send_digits(self, digits: str) -> None:
        self.digits_sent.append(digits)

    async def hangup(self) -> None:
        if not self.ended.is_set():
            self.hung_up_by_us = True
            self._end(by_far_end=False)
        await asyncio.gather(self._clock, return_exceptions=True)

    def _end(self, *, by_far_end: bool) -> None:
        self._mark_ended(by_far_end=by_far_end)
        for _, playback in self.queued:
            playback.finish()
        self.queued.clear()
        self._events.put_nowait(None)
        if self._clock is not asyncio.current_task():
            self._clock.cancel()

    def elapsed_ms(self) -> int:
        return self.ticks * 20

    def agent_audio_ms(self) -> int:
        return sum(20 for frame in self.outbound if frame.any())

    async def _run(self) -> None:
        while not self.ended.is_set():
            at = self.ticks * 20
            if self.far_end_hangs_up_at_ms is not None and at >= self.far_end_hangs_up_at_ms:
                self._end(by_far_end=True)
                return
            outbound = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            if self.queued:
                outbound, playback = self.queued.popleft()
                playback.advance(at)
            self.outbound.append(outbound)
            self._follow_agent(at, outbound.any())
            inbound = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            if self.speaking is not None:
                inbound, self.speaking = self.speaking[:FRAME_SAMPLES], self.speaking[FRAME_SAMPLES:]
                inbound = np.pad(inbound, (0, FRAME_SAMPLES - len(inbound)))
                if len(self.speaking) == 0:  # the agent's turn starts now: count its speech and quiet afresh
                    self.speaking = None
                    self._agent_ms = self._quiet_ms = self._since_ms = 0
            self.ticks += 1
            self._events.put_nowait(AudioFrame(inbound, outbound, at))
            await asyncio.sleep(self.tick_seconds)

    def _follow_agent(self, at: int, agent_audio: bool) -> None:
        """Start the next utterance when its moment has come."""
        if agent_audio:
            self._agent_ms += 20
            self._quiet_ms = 0
        elif not self.queued:
            self._quiet_ms += 20
        if self.speaking is not None or not self.utterances:
            return
        self._since_ms += 20
        nxt = self.utterances[0]
        first = not self.started_at_ms
        due = (at >= nxt.delay_ms if first else
               self._agent_ms >= nxt.delay_ms if nxt.after == "over" else
               self._since_ms >= nxt.delay_ms if nxt.after == "pause" else
               self._agent_ms > 0 and self._quiet_ms >= nxt.delay_ms)
        if due:
            self.speaking = self.utterances.popleft().pcm
            self.started_at_ms.append(at)
