"""A media channel whose clock the test moves, one 20 ms frame per tick (unit tests of the voice engine)."""

from __future__ import annotations

import asyncio
import collections

import numpy as np

from byourside_server.telephony.media import FRAME_MS, FRAME_SAMPLES, AudioFrame, MediaChannel, Playback


class ScriptedMedia(MediaChannel):
    """Each tick sends one queued frame of our speech and delivers one frame of ``inbound`` (the callee)."""

    def __init__(self, inbound: np.ndarray) -> None:
        super().__init__()
        self.inbound = inbound
        self.ticks = 0
        self.queued: collections.deque[tuple[np.ndarray, Playback]] = collections.deque()
        self.sent: list[bool] = []  # per tick: did a frame of our speech leave
        self._events: asyncio.Queue = asyncio.Queue()

    async def events(self):  # noqa: ANN201
        while (event := await self._events.get()) is not None:
            yield event

    def play(self, pcm: np.ndarray) -> Playback:
        playback = Playback(len(pcm))
        for start in range(0, len(pcm), FRAME_SAMPLES):
            frame = pcm[start:start + FRAME_SAMPLES]
            self.queued.append((np.pad(frame, (0, FRAME_SAMPLES - len(frame))), playback))
        return playback

    def clear(self) -> None:
        for _, playback in self.queued:
            playback.finish()
        self.queued.clear()

    def mark(self):  # noqa: ANN201
        raise NotImplementedError

    async def send_digits(self, digits: str) -> None:
        pass

    async def hangup(self) -> None:
        if not self.ended.is_set():
            self._mark_ended(by_far_end=False)
            self.clear()
            self._events.put_nowait(None)

    def elapsed_ms(self) -> int:
        return self.ticks * FRAME_MS

    async def tick(self, count: int = 1) -> None:
        for _ in range(count):
            at = self.ticks * FRAME_MS
            outbound = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            if self.queued:
                outbound, playback = self.queued.popleft()
                playback.advance(at)
            self.sent.append(bool(outbound.any()))
            start = self.ticks * FRAME_SAMPLES
            inbound = self.inbound[start:start + FRAME_SAMPLES]
            inbound = np.pad(inbound, (0, FRAME_SAMPLES - len(inbound)))
            self.ticks += 1
            self._events.put_nowait(AudioFrame(inbound, outbound, at))
            await self.after_frame()
            for _ in range(8):  # let the engine, its STT and the speaker react within the tick
                await asyncio.sleep(0)

    async def after_frame(self) -> None:
        """What a tick waits for once its frame is delivered (nothing here)."""
