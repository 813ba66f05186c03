"""A carrier's WebSocket media stream as a ``MediaChannel`` (Twilio Media Streams and the like).

Such a carrier sends the call's audio to us as JSON messages over one
WebSocket (μ-law 8 kHz in base64), the keys the callee presses, echoes of our
marks and a stop; we send audio, marks and ``clear`` back. A ``StreamProtocol``
(one small class per carrier) reads and writes those messages; everything else
is here, once:

- One 20 ms ticker paces both directions, as RTP does: each tick sends the next
  20 ms of queued audio (the carrier plays what it receives at once, so what a
  ``Playback`` counts as played is what has left) and takes the next received
  frame from a small buffer that absorbs TCP's bursts, so the voice engine and
  the recorder see both sides on one aligned timeline. A ticker held up by a
  busy event loop (a model loading, a loaded machine) catches up, up to
  ``CATCH_UP_SECONDS``, rather than skip ticks: the carrier buffers what we
  send in a burst, and the callee's words received meanwhile are not dropped.
  (RTP resynchronises instead: a SIP far end buffers little.)
- ``clear`` drops the audio queued here and tells the carrier to drop what it
  still holds (barge-in).
- ``mark`` goes out in order with the audio and resolves when the carrier
  echoes it (the audio before it has played), or False when cleared or ended.
- Keys to the far end are in-band DTMF tones (these streams carry no outbound
  key events); keys from the far end arrive as events.
- The end: the carrier's stop or a closed socket (the far end hung up), or our
  ``hangup``, which asks the carrier to end the call (``end_call``).
- ``transfer`` asks the carrier to hand the call to a person (``transfer_call``,
  the carrier's REST API); once it has, the stream is ours no more: the
  channel ends, and ``hangup`` leaves the call (now the person's) alone.
  While it is under way the carrier may stop this stream (Twilio does, to
  dial the person): that is not the call's end. The clock goes on (silence
  both ways, as the callee hears the person's phone ring) until the transfer
  is done, or failed and the carrier brought the callee back on a new stream
  (``resume``); a failed transfer with no stream back is the call's end.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import structlog

from byourside_server.domain import AnswerVerdict
from byourside_server.telephony.media import (
    FRAME_MS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioFrame,
    DigitReceived,
    MediaChannel,
    MediaEvent,
    Playback,
)
from byourside_server.telephony.transfer import TransferFailed
from byourside_server.voice.audio import ulaw_decode, ulaw_encode

log = structlog.get_logger(__name__)

INBOUND_DEPTH_FRAMES = 2  # received frames held before playout starts (and again after an underrun)
INBOUND_MAX_FRAMES = 600  # a carrier that runs ahead of our clock by more than this: the oldest frames are dropped
CATCH_UP_SECONDS = 10.0  # a clock that fell behind by up to this catches up tick by tick; more is given up
DTMF_TONE_MS = 100
DTMF_GAP_MS = 80
DTMF_FREQUENCIES = {  # (row, column) Hz, ITU-T Q.23
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}


# What a carrier's message means to us.
@dataclass(frozen=True)
class StreamAudio:
    mulaw: bytes


@dataclass(frozen=True)
class StreamDigit:
    digit: str


@dataclass(frozen=True)
class StreamMark:
    name: str


@dataclass(frozen=True)
class StreamStop:
    pass


StreamEvent = StreamAudio | StreamDigit | StreamMark | StreamStop


class StreamProtocol:
    """One carrier's media-stream messages. Twilio's and Telnyx's share one JSON shape: ``event``,
    ``media.payload`` (base64 μ-law), ``dtmf.digit``, ``mark.name``; ``envelope`` holds the keys a
    carrier wants in every message we send (Twilio: the ``streamSid``)."""

    def __init__(self, envelope: dict[str, str] | None = None) -> None:
        self.envelope = dict(envelope or {})

    def parse(self, message: str) -> StreamEvent | None:
        """A received message; None for what we do not use (connected, start, unknown events)."""
        try:
            data = json.loads(message)
            event = data.get("event")
            if event == "media" and data["media"].get("track", "inbound") == "inbound":
                return StreamAudio(base64.b64decode(data["media"]["payload"]))
            if event == "dtmf":
                return StreamDigit(str(data["dtmf"]["digit"]))
            if event == "mark":
                return StreamMark(str(data["mark"]["name"]))
            if event == "stop":
                return StreamStop()
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # a malformed message is skipped, not fatal
        return None

    def _message(self, event: str, **body: object) -> str:
        return json.dumps({"event": event, **self.envelope, **body})

    def media(self, mulaw: bytes) -> str:
        """A message sending μ-law audio to the call."""
        return self._message("media", media={"payload": base64.b64encode(mulaw).decode()})

    def mark(self, name: str) -> str:
        """A message the carrier echoes back once the audio sent before it has played."""
        return self._message("mark", mark={"name": name})

    def clear(self) -> str:
        """A message dropping the audio the carrier holds but has not played yet."""
        return self._message("clear")


class TextSocket(Protocol):
    """The server side of the WebSocket (starlette's ``WebSocket`` is one)."""

    async def receive_text(self) -> str: ...

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


def dtmf_tones(digits: str) -> np.ndarray:
    """In-band DTMF: each key a 100 ms dual tone, then 80 ms of silence."""
    tone_t = np.arange(SAMPLE_RATE * DTMF_TONE_MS // 1000) / SAMPLE_RATE
    gap = np.zeros(SAMPLE_RATE * DTMF_GAP_MS // 1000)
    parts = []
    for digit in digits.upper():
        if digit not in DTMF_FREQUENCIES:
            continue
        low, high = DTMF_FREQUENCIES[digit]
        parts += [6000 * (np.sin(2 * np.pi * low * tone_t) + np.sin(2 * np.pi * high * tone_t)), gap]
    return np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, dtype=np.int16)


class WebSocketMedia(MediaChannel):
    """One answered call's media over a carrier's WebSocket (see the module docstring)."""

    inbound_delay_ms = INBOUND_DEPTH_FRAMES * FRAME_MS

    def __init__(self, socket: TextSocket, protocol: StreamProtocol, call_id: str,
                 end_call: Callable[[], Awaitable[None]],
                 transfer_call: Callable[[str, str | None, np.ndarray | None], Awaitable[None]] | None = None) -> None:
        super().__init__()
        self.socket, self.protocol, self.call_id = socket, protocol, call_id
        self._end_call = end_call  # asks the carrier to hang up the call (its REST API)
        self._transfer_call = transfer_call  # asks the carrier to hand the call to a person (its REST API)
        self.transferred = False  # the carrier has the call now: hanging up must not end it
        self.verdict: AnswerVerdict | None = None  # the carrier's answering-machine detection, when it reports one
        self._events: asyncio.Queue[MediaEvent | None] = asyncio.Queue()
        self._inbound: collections.deque[np.ndarray] = collections.deque()
        self._playing_out = False
        # (frame, its Playback) or a mark's name, in order
        self._outbound: collections.deque[tuple[np.ndarray, Playback] | str] = collections.deque()
        self._marks: dict[str, asyncio.Future[bool]] = {}
        self._names = (f"m{n}" for n in itertools.count(1))
        self.ticks = 0
        self._tasks: list[asyncio.Task] = []
        self._closing: asyncio.Task | None = None
        self._closed = asyncio.Event()  # the socket is done with: the route handler may return
        self._holding = False  # a transfer is under way: the stream stopping is not the call's end
        self._live = True  # a stream to send on (False between a stream stopped in a transfer and the next)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read(self.socket)), loop.create_task(self._tick_forever())]

    @property
    def awaiting_stream(self) -> bool:
        """A transfer is under way and the carrier stopped the stream: a new one may bring the callee back."""
        return self._holding and not self._live and not self.ended.is_set()

    def resume(self, socket: TextSocket, protocol: StreamProtocol) -> None:
        """The carrier brought the callee back (a transfer nobody took) on a new stream: carry on over it."""
        self.socket, self.protocol = socket, protocol
        self._inbound.clear()
        self._playing_out = False
        self._live = True
        self._tasks.append(asyncio.get_running_loop().create_task(self._read(socket)))
        log.info("media_stream_resumed", call_id=self.call_id)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def answered_by(self) -> AnswerVerdict | None:
        return self.verdict

    # inbound
    async def _read(self, socket: TextSocket) -> None:
        try:
            while True:
                event = self.protocol.parse(await socket.receive_text())
                if isinstance(event, StreamAudio):
                    self._take_audio(event.mulaw)
                elif isinstance(event, StreamDigit):
                    self._events.put_nowait(DigitReceived(event.digit, self.elapsed_ms()))
                elif isinstance(event, StreamMark):
                    done = self._marks.pop(event.name, None)
                    if done is not None and not done.done():
                        done.set_result(True)
                elif isinstance(event, StreamStop):
                    break
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a closed or broken socket: the call is over for us
            pass
        if socket is not self.socket:
            return  # a stream replaced by a newer one
        if self._holding:
            self._stream_stopped()
            return
        if not self.ended.is_set():
            log.info("media_stream_far_end_stopped", call_id=self.call_id)
            self._mark_ended(by_far_end=True)
        self._close_media()

    def _stream_stopped(self) -> None:
        """The carrier stopped the stream during a transfer: nothing goes out until one comes back."""
        if self._live:
            self._live = False
            self._drop_queued()
            self._inbound.clear()
            self._playing_out = False

    def _take_audio(self, mulaw: bytes) -> None:
        pcm = ulaw_decode(mulaw)
        for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            self._inbound.append(pcm[start:start + FRAME_SAMPLES])
        while len(self._inbound) > INBOUND_MAX_FRAMES:
            self._inbound.popleft()

    def _next_inbound(self) -> np.ndarray:
        if not self._playing_out and len(self._inbound) >= INBOUND_DEPTH_FRAMES:
            self._playing_out = True
        if self._playing_out and self._inbound:
            return self._inbound.popleft()
        self._playing_out = False  # underrun: buffer again rather than play the gaps as they come
        return np.zeros(FRAME_SAMPLES, dtype=np.int16)

    async def events(self) -> AsyncIterator[MediaEvent]:
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    # the clock
    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while not self.ended.is_set():
                await self._tick()
                next_at += FRAME_MS / 1000
                delay = next_at - loop.time()
                if delay < -CATCH_UP_SECONDS:  # stalled for longer than we catch up on: that time is lost
                    next_at, delay = loop.time(), 0
                await asyncio.sleep(max(0.0, delay))
        except Exception:  # noqa: BLE001 - a socket that fails while sending: the call is over for us
            if not self.ended.is_set():
                self._mark_ended(by_far_end=True)
            self._close_media()

    async def _tick(self) -> None:
        self.ticks += 1
        outbound = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        await self._send_marks()
        if self._outbound and self._live:
            frame, playback = self._outbound.popleft()  # type: ignore[misc]
            outbound = frame
            await self._send(self.protocol.media(ulaw_encode(frame)))
            playback.advance((self.ticks - 1) * FRAME_MS)
            await self._send_marks()  # a mark right behind the last frame goes out with it
        self._events.put_nowait(AudioFrame(self._next_inbound(), outbound, (self.ticks - 1) * FRAME_MS))

    async def _send_marks(self) -> None:
        while self._live and self._outbound and isinstance(self._outbound[0], str):
            await self._send(self.protocol.mark(self._outbound.popleft()))  # type: ignore[arg-type]

    async def _send(self, message: str) -> None:
        """Send on the stream; during a transfer a stream that went away is a stopped one, not a failure."""
        socket = self.socket
        try:
            await socket.send_text(message)
        except Exception:
            if not self._holding:
                raise
            if socket is self.socket:
                self._stream_stopped()

    # outbound
    def play(self, pcm: np.ndarray) -> Playback:
        playback = Playback(len(pcm))
        if self.ended.is_set():
            playback.finish()
            return playback
        for start in range(0, len(pcm), FRAME_SAMPLES):
            frame = pcm[start:start + FRAME_SAMPLES]
            if len(frame) < FRAME_SAMPLES:
                frame = np.pad(frame, (0, FRAME_SAMPLES - len(frame)))
            self._outbound.append((frame, playback))
        if playback.frames == 0:
            playback.finish()
        return playback

    def mark(self) -> asyncio.Future:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self.ended.is_set():
            done.set_result(False)
            return done
        name = next(self._names)
        self._marks[name] = done
        self._outbound.append(name)
        return done

    def clear(self) -> None:
        self._drop_queued()
        if not self.ended.is_set():
            asyncio.get_running_loop().create_task(self._send_quietly(self.protocol.clear()))

    def _drop_queued(self) -> None:
        for item in self._outbound:
            if isinstance(item, tuple):
                item[1].finish()
        self._outbound.clear()
        for done in self._marks.values():
            if not done.done():
                done.set_result(False)
        self._marks.clear()

    async def _send_quietly(self, message: str) -> None:
        try:
            await self.socket.send_text(message)
        except Exception:  # noqa: BLE001 - the socket closed meanwhile: nothing left to clear
            pass

    async def send_digits(self, digits: str) -> None:
        await self.play(dtmf_tones(digits))

    def elapsed_ms(self) -> int:
        return self.ticks * FRAME_MS

    # the end
    async def transfer(self, to: str, brief: str | None = None, brief_audio: np.ndarray | None = None) -> None:
        if self._transfer_call is None:
            raise TransferFailed("unsupported")
        if self.ended.is_set():
            raise TransferFailed("call_ended")
        self.transferred = True  # before asking: the carrier stops the stream as soon as it takes the call
        self._holding = True
        try:
            await self._transfer_call(to, brief, brief_audio)
        except TransferFailed as failed:
            self.transferred = self._holding = False
            if not self._live and not self.ended.is_set():  # no stream came back: the callee is gone
                log.info("media_stream_not_back_after_transfer", call_id=self.call_id, reason=failed.reason)
                self._mark_ended(by_far_end=True)
                await self._close_media()
                raise TransferFailed("call_ended") from None
            raise
        self._holding = False
        log.info("media_stream_transferred", call_id=self.call_id, warm=brief is not None)
        self._mark_ended(by_far_end=False)
        await self._close_media()

    async def hangup(self) -> None:
        if not self.ended.is_set() and self.transferred:
            self._mark_ended(by_far_end=False)
        elif not self.ended.is_set():
            self._mark_ended(by_far_end=False)
            try:
                await self._end_call()
            except Exception:  # noqa: BLE001 - the call is over for us either way
                log.warning("media_stream_hangup_failed", call_id=self.call_id)
        await self._close_media()

    def _close_media(self) -> asyncio.Task:
        """Stop the clock and the reader, end the events and the socket, once; every caller gets the same task."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._shut())
        return self._closing

    async def _shut(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._drop_queued()
        self._events.put_nowait(None)  # after the clock's last frame
        try:
            await self.socket.close()
        except Exception:  # noqa: BLE001 - already closed by the far end
            pass
        self._closed.set()
