"""The media port: one answered call as a full-duplex audio channel.

A carrier implements ``MediaChannel`` and nothing else about voice: RTP
(telephony/sip/media.py) or a carrier's WebSocket media stream. Everything a
conversation needs above raw audio (endpointing, barge-in, transcription,
speech, answering-machine detection, recording, latency) is built once on this
port in ``voice/`` (voice/engine.py), which turns a channel into the text-faced
``Line`` the brains use.

Audio is 8 kHz signed 16-bit mono PCM (numpy ``int16``) in 20 ms frames of 160
samples, the telephone's own rate; times are milliseconds since answer on the
channel's timeline.

- Inbound: ``events()`` yields one ``AudioFrame`` per 20 ms slot (the callee's
  audio, and what we played in that same slot, so both sides line up) and a
  ``DigitReceived`` per DTMF key; it ends when the call is over.
- Outbound: ``play`` queues audio and returns a ``Playback`` that reports how
  much of it actually left (``played_ms``) and resolves when it has all left,
  was cleared, or the call ended. ``clear`` drops everything queued at once
  (barge-in). ``mark`` resolves once everything queued before it has left.
- ``send_digits`` sends DTMF; ``hangup`` ends the call from our side;
  ``ended`` is set when either side has ended it.
- ``transfer`` hands the call to a person through the carrier (SIP REFER, a
  carrier's own transfer); after it the channel is ended and ``hangup`` no
  longer ends the call. ``answered_by`` is the carrier's answering-machine
  verdict, when it gives one.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from byourside_server.telephony.transfer import TransferFailed

if TYPE_CHECKING:
    from byourside_server.domain import AnswerVerdict

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000


@dataclass(frozen=True)
class AudioFrame:
    """One 20 ms slot: the callee's audio and ours, aligned."""

    inbound: np.ndarray  # int16, FRAME_SAMPLES; silence when nothing arrived in time
    outbound: np.ndarray  # what we played in the same slot (silence when we were quiet)
    at_ms: int  # start of the slot on the channel's timeline


@dataclass(frozen=True)
class DigitReceived:
    """A DTMF key the far end pressed."""

    digit: str
    at_ms: int


MediaEvent = AudioFrame | DigitReceived


@dataclass(frozen=True)
class PlayResult:
    """How a ``play`` ended."""

    played_ms: int  # audio of this play that actually left for the far end
    total_ms: int  # audio that was queued
    started_at_ms: int | None  # timeline ms at which its first frame left (None: nothing left)

    @property
    def completed(self) -> bool:
        return self.played_ms >= self.total_ms


class Playback:
    """A handle on queued audio: its live position and its end.

    Adapters create one per ``play`` and call ``advance`` for each frame that
    leaves and ``finish`` once it is over (all sent, cleared or the call ended).
    """

    def __init__(self, samples: int) -> None:
        self.total_ms = samples * 1000 // SAMPLE_RATE
        self.frames = -(-samples // FRAME_SAMPLES)
        self.sent_frames = 0
        self.started_at_ms: int | None = None
        self._done: asyncio.Future[PlayResult] = asyncio.get_running_loop().create_future()

    @property
    def played_ms(self) -> int:
        return min(self.total_ms, self.sent_frames * FRAME_MS)

    def advance(self, at_ms: int) -> None:
        if self.started_at_ms is None:
            self.started_at_ms = at_ms
        self.sent_frames += 1
        if self.sent_frames >= self.frames:
            self.finish()

    def finish(self) -> None:
        if not self._done.done():
            self._done.set_result(PlayResult(self.played_ms, self.total_ms, self.started_at_ms))

    @property
    def finished(self) -> bool:
        return self._done.done()

    def __await__(self):
        return self._done.__await__()


class MediaChannel(ABC):
    """A live, answered call as audio (see the module docstring)."""

    inbound_delay_ms: int = 0  # inbound audio held back before it reaches ``events`` (a jitter buffer)

    def __init__(self) -> None:
        self.ended = asyncio.Event()
        self.ended_at_ms: int | None = None
        self.ended_by_far_end = False

    @abstractmethod
    def events(self) -> AsyncIterator[MediaEvent]:
        """Inbound frames and digits, in order, until the call is over. One consumer per channel."""

    @abstractmethod
    def play(self, pcm: np.ndarray) -> Playback:
        """Queue 8 kHz int16 audio behind what is already queued."""

    @abstractmethod
    def clear(self) -> None:
        """Drop all queued audio now; each pending ``Playback`` finishes with what had left."""

    @abstractmethod
    def mark(self) -> asyncio.Future[None]:
        """A future that resolves once everything queued before it has left."""

    @abstractmethod
    async def send_digits(self, digits: str) -> None:
        """Send DTMF keys (0-9, *, #, A-D) after the audio already queued; returns once they are sent."""

    @abstractmethod
    async def hangup(self) -> None:
        """End the call from our side and release the media. Idempotent."""

    @abstractmethod
    def elapsed_ms(self) -> int:
        """Milliseconds since answer on this channel's timeline."""

    def clock_ms(self) -> float:
        """The timeline now at sub-frame resolution, where the adapter knows it (for latency figures)."""
        return float(self.elapsed_ms())

    async def transfer(self, to: str, brief: str | None = None, brief_audio: np.ndarray | None = None) -> None:
        """Hand the call to the person at ``to`` (E.164); warm when ``brief`` is given: the person hears it
        (``brief_audio``, our own voice, where the carrier can play audio; else the carrier says the text)
        before being connected. Returns once the carrier has the call; raises
        ``telephony.base.TransferFailed`` when the person was not reached (the call is still ours)."""
        raise TransferFailed("unsupported")

    def answered_by(self) -> AnswerVerdict | None:
        """The carrier's answering-machine verdict (None: the carrier gave none)."""
        return None

    def _mark_ended(self, *, by_far_end: bool) -> None:
        """For adapters: the call is over (``ended`` set, the time noted once)."""
        if not self.ended.is_set():
            self.ended_at_ms = self.elapsed_ms()
            self.ended_by_far_end = by_far_end
            self.ended.set()
