"""RTP media for one call (RFC 3550, RFC 4733): paced sending, a jitter buffer, DTMF.

One ticker drives both directions on absolute 20 ms schedules (no drift).
Each receive tick takes the next inbound frame out of the jitter buffer and
hands it, with the outbound frame sent since the last receive tick, to the
listener, so the listener and the recorder see both sides on one aligned
timeline (``ticks``). Between replies its phase follows the inbound stream
(the jitter buffer's ``lead_ms``), so a frame is not held back most of a tick
for nothing.

Between replies we send silence (or DTMF event packets) on the receive
ticks, so the far end keeps a steady stream. A reply is a talkspurt: its
first frame leaves as soon as it is queued (``play``), marked (RTP marker
bit, RFC 3551 4.1), and the rest follow every 20 ms from it, so the reply
does not wait up to a frame for the next tick. Timestamps go on by one frame
per packet; once the reply is over the silence goes out on the receive ticks
again, so the gain is never carried from one reply to the next.

``clock_ms`` is the timeline at sub-frame resolution, for latency figures.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import structlog

from byourside_server.telephony.media import Playback
from byourside_server.telephony.sip.jitter import AdaptiveJitterBuffer, quiet_below
from byourside_server.voice.audio import FRAME_MS, FRAME_SAMPLES, G711

log = structlog.get_logger(__name__)

DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}
EVENT_DIGITS = {v: k for k, v in DTMF_EVENTS.items()}
DIGIT_FRAMES = 5  # 100 ms tone per digit
_EARLY_S = 0.0005  # a tick this close to due is due (the loop's timers may fire a hair early)
GAP_FRAMES = 4  # 80 ms between digits
RELAY_FRAMES = 4  # a bridged leg's audio waiting to go out; older frames are dropped (bounded delay)


def _next_slot(at: float, now: float) -> float:
    """The next tick of a 20 ms schedule after one due at ``at``; after a stalled loop, now (no burst)."""
    at += FRAME_MS / 1000
    return now if at - now < -0.2 else at


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket | None:
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    csrc_count, has_ext = data[0] & 0x0F, bool(data[0] & 0x10)
    offset = 12 + 4 * csrc_count
    if has_ext:
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    end = len(data)
    if data[0] & 0x20 and end > offset:  # padding
        end -= data[-1]
    if end < offset:
        return None
    seq, ts, ssrc = struct.unpack_from("!HII", data, 2)
    return RtpPacket(data[1] & 0x7F, bool(data[1] & 0x80), seq, ts, ssrc, data[offset:end])


class JitterBuffer:
    """Reorders packets by sequence number and releases one 20 ms frame per tick.

    Playout starts once ``depth`` frames are buffered (absorbing that much
    jitter); a frame that has not arrived by its turn is played as silence and
    a packet arriving after its turn is dropped.
    """

    def __init__(self, depth: int = 3, max_frames: int = 50) -> None:
        self.depth = depth
        self.max_frames = max_frames
        self._frames: dict[int, bytes] = {}
        self._next: int | None = None
        self._started = False
        self.late = 0
        self.lost = 0

    def push(self, seq: int, payload: bytes) -> None:
        if self._next is None:
            self._next = seq
        elif ((seq - self._next) & 0xFFFF) >= 0x8000:
            self.late += 1
            return
        self._frames[seq] = payload
        if len(self._frames) > self.max_frames:  # the far end runs ahead of us: skip to the oldest we hold
            self._next = min(self._frames, key=lambda s: (s - self._next) & 0xFFFF)

    def pop(self) -> bytes | None:
        if self._next is None:
            return None
        if not self._started:
            if len(self._frames) < self.depth:
                return None
            self._started = True
        payload = self._frames.pop(self._next, None)
        if payload is None:
            if not self._frames:
                self._started = False  # underrun: rebuffer rather than count a gap as loss
                return None
            self.lost += 1
        self._next = (self._next + 1) & 0xFFFF
        return payload


class RtpSession(asyncio.DatagramProtocol):
    """The RTP endpoint of one call."""

    def __init__(self, on_frame: Callable[[np.ndarray, np.ndarray], None] | None = None) -> None:
        self.on_frame = on_frame  # (inbound pcm, outbound pcm) per 20 ms tick
        self.on_digit: Callable[[str], None] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.remote: tuple[str, int] | None = None
        self.codec = G711(0)
        self.event_pt: int | None = None
        # Holds inbound audio back only as long as the measured jitter needs (20 ms on a clean link).
        self.jitter = AdaptiveJitterBuffer()
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        # (frame, its Playback), a DTMF digit, or a future resolved once everything before it has gone out
        self._outbound: collections.deque[tuple[np.ndarray, Playback] | asyncio.Future | str] = collections.deque()
        self._dtmf: collections.deque[tuple[int, int, bool, bool]] = collections.deque()  # (event, dur, end, marker)
        self._dtmf_ts = 0
        self._last_event: tuple[int, int] | None = None  # (timestamp, event) of the last received digit
        self._ticker: asyncio.Task | None = None
        self.ticks = 0
        self._receive_at = 0.0  # loop time of the next receive tick, on its schedule
        self._received_at = 0.0  # loop time the last receive tick was due
        self._send_at = 0.0  # loop time of the next frame of a talkspurt
        self._talking = False  # a talkspurt is under way: frames leave on their own schedule
        self._sent: np.ndarray | None = None  # the outbound frame sent since the last receive tick
        self.talkspurt_starts: collections.deque[float] = collections.deque(maxlen=32)  # clock_ms of each
        self.talkspurt_at_once = True  # False: a reply's first frame waits for the next receive tick
        # Bridged to another leg (bridge.py): its audio, sent on our receive ticks in place of silence.
        self._relayed: collections.deque[np.ndarray] = collections.deque(maxlen=RELAY_FRAMES)

    # asyncio protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        packet = parse_rtp(data)
        if packet is None:
            return
        if self.event_pt is not None and packet.payload_type == self.event_pt:
            self._receive_event(packet)
        elif packet.payload_type == self.codec.payload_type:
            self.jitter.push(packet.seq, packet.payload, packet.timestamp)

    def _receive_event(self, packet: RtpPacket) -> None:
        if len(packet.payload) < 4:
            return
        event, flags = packet.payload[0], packet.payload[1]
        key = (packet.timestamp, event)
        if flags & 0x80 and key != self._last_event:  # end bit, reported once despite the triple send
            self._last_event = key
            if self.on_digit is not None and event in EVENT_DIGITS:
                self.on_digit(EVENT_DIGITS[event])

    @property
    def local_port(self) -> int:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[1]

    # control
    def start(self, remote: tuple[str, int], payload_type: int, event_pt: int | None) -> None:
        self.remote, self.codec, self.event_pt = remote, G711(payload_type), event_pt
        self.jitter.quiet = quiet_below(self.codec.decode)  # it sheds delay only in pauses
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
            self._ticker = None
        for item in self._outbound:
            if isinstance(item, asyncio.Future) and not item.done():
                item.set_result(False)
            elif isinstance(item, tuple):
                item[1].finish()
        self._outbound.clear()
        if self.transport is not None:
            self.transport.close()

    def play(self, pcm: np.ndarray) -> Playback:
        """Queue 8 kHz PCM for sending; the Playback counts the frames that leave.

        Between replies the first frame leaves at once (a talkspurt begins); see the module docstring.
        """
        idle = not self._talking and not self._outbound and not self._dtmf
        playback = Playback(len(pcm))
        for start in range(0, len(pcm), FRAME_SAMPLES):
            frame = pcm[start:start + FRAME_SAMPLES]
            if len(frame) < FRAME_SAMPLES:
                frame = np.pad(frame, (0, FRAME_SAMPLES - len(frame)))
            self._outbound.append((frame, playback))
        if playback.frames == 0:
            playback.finish()
        elif idle and self.talkspurt_at_once and self._ticker is not None and not self._ticker.done():
            self._send_at = asyncio.get_running_loop().time()
            self._send_next()
            self._send_at += FRAME_MS / 1000
        return playback

    def clock_ms(self) -> float:
        """The timeline now, at sub-frame resolution: ``ticks * 20`` plus the time since that tick was due."""
        since = (asyncio.get_running_loop().time() - self._received_at) * 1000 if self._ticker is not None else 0.0
        return self.ticks * FRAME_MS + min(float(FRAME_MS), max(0.0, since))

    def relay(self, frame: np.ndarray) -> None:
        """Send one 20 ms frame of another leg's audio on the next receive tick with nothing else to send."""
        self._relayed.append(frame)

    def mark(self) -> asyncio.Future:
        """A future that resolves (True) once everything queued before it has gone out."""
        done = asyncio.get_running_loop().create_future()
        self._outbound.append(done)
        return done

    def stop_playing(self) -> None:
        """Drop queued speech at once (barge-in, hang-up); playbacks finish where they are, marks resolve False."""
        kept = collections.deque()
        for item in self._outbound:
            if isinstance(item, asyncio.Future):
                if not item.done():
                    item.set_result(False)
            elif isinstance(item, tuple):
                item[1].finish()
            else:
                kept.append(item)
        self._outbound = kept

    def send_digits(self, digits: str) -> asyncio.Future:
        """Queue RFC 4733 events (falls back to nothing if the far end refused telephone-event)."""
        for digit in digits:
            self._outbound.append(digit)
        done = asyncio.get_running_loop().create_future()
        self._outbound.append(done)
        return done

    # the ticker
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._receive_at = self._send_at = self._received_at = loop.time()
        while True:
            now = loop.time()
            if self._talking and now >= self._send_at - _EARLY_S:
                self._send_next()
                self._send_at = _next_slot(self._send_at, now)
            if now >= self._receive_at - _EARLY_S:
                if not self._talking:
                    self._send_next()  # silence, DTMF or a reply's first frame, on the receive tick
                    self._send_at = self._receive_at + FRAME_MS / 1000
                self._tick()
                # The phase moves between replies only, so each receive tick still reports one frame we sent.
                lead = self.jitter.lead_ms() if not self._talking else 0.0
                self._receive_at = _next_slot(self._receive_at - lead / 1000, now)
            wake = min(self._receive_at, self._send_at) if self._talking else self._receive_at
            await asyncio.sleep(max(0.0, wake - loop.time()))

    def _send_next(self) -> None:
        """Send the next outbound packet: a frame of speech, a DTMF event packet, or silence."""
        if self._dtmf:
            self._send_event(*self._dtmf.popleft())
            self._ts = (self._ts + FRAME_SAMPLES) & 0xFFFFFFFF
            return
        self._resolve_marks()
        item = self._outbound.popleft() if self._outbound else None
        if isinstance(item, str):
            self._queue_digit(item)
            self._send_event(*self._dtmf.popleft())
        elif item is None and self._talking:
            self._talking = False  # the talkspurt is over: silence goes out on the next receive tick
            return
        else:
            if item is not None:
                outbound = item[0]
            elif self._relayed:
                outbound = self._relayed.popleft()
            else:
                outbound = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            starts = item is not None and not self._talking
            if starts:
                self._talking = True
                self.talkspurt_starts.append(self.clock_ms())
            self._send(self.codec.payload_type, self.codec.encode(outbound), marker=starts)
            self._sent = outbound
            if item is not None:
                item[1].advance(self.ticks * FRAME_MS)
                self._resolve_marks()  # a mark right behind the last frame resolves as it leaves
        self._ts = (self._ts + FRAME_SAMPLES) & 0xFFFFFFFF

    def _tick(self) -> None:
        """A receive tick: the next inbound frame, with what we sent since the last one, to the listener."""
        self._received_at = self._receive_at
        self.ticks += 1
        outbound = self._sent if self._sent is not None else np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._sent = None
        payload = self.jitter.pop()
        inbound = self.codec.decode(payload) if payload else np.zeros(FRAME_SAMPLES, dtype=np.int16)
        if self.on_frame is not None:
            try:
                self.on_frame(inbound, outbound)
            except Exception:
                log.exception("rtp_frame_listener_failed")

    def _resolve_marks(self) -> None:
        while self._outbound and isinstance(self._outbound[0], asyncio.Future):
            fut = self._outbound.popleft()
            if not fut.done():
                fut.set_result(True)

    def _queue_digit(self, digit: str) -> None:
        event = DTMF_EVENTS.get(digit.upper())
        if event is None or self.event_pt is None:
            return
        self._dtmf_ts = self._ts
        for i in range(1, DIGIT_FRAMES + 1):
            self._dtmf.append((event, i * FRAME_SAMPLES, False, i == 1))
        for _ in range(3):  # the end packet is sent three times (RFC 4733 2.5.1.4)
            self._dtmf.append((event, DIGIT_FRAMES * FRAME_SAMPLES, True, False))
        for _ in range(GAP_FRAMES):
            self._dtmf.append((-1, 0, False, False))

    def _send_event(self, event: int, duration: int, end: bool, marker: bool) -> None:
        if event < 0:  # inter-digit gap: silence
            self._send(self.codec.payload_type, self.codec.silence, marker=False)
            return
        payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
        assert self.event_pt is not None
        self._send(self.event_pt, payload, marker=marker, timestamp=self._dtmf_ts)

    def _send(self, pt: int, payload: bytes, marker: bool, timestamp: int | None = None) -> None:
        if self.transport is None or self.remote is None:
            return
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self._seq,
                             self._ts if timestamp is None else timestamp, self._ssrc)
        self._seq = (self._seq + 1) & 0xFFFF
        try:
            self.transport.sendto(header + payload, self.remote)
        except OSError:
            log.warning("rtp_send_failed")
