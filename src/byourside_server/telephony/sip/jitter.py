"""An adaptive jitter buffer for one inbound RTP stream of 20 ms frames.

A drop-in for ``rtp.JitterBuffer`` with the same output contract: ``push``
each packet as it arrives, ``pop`` once per 20 ms tick; ``pop`` returns the
next frame's payload in sequence order, or None when there is nothing to
play (the ticker plays silence: before playout starts, on an underrun, and
for a frame that never came, which counts as ``lost``). A packet arriving
after its turn is dropped and counted as ``late``.

What adapts is the depth, the number of frames held before playout starts
(again after an underrun): ``1 + round(jitter_factor * J / 20 ms)`` frames,
between ``min_depth`` and ``max_depth``, where J is the RFC 3550 interarrival
jitter estimate (section 6.4.1: the mean deviation of the difference in
transit time between consecutive packets, smoothed by 1/16 per packet), held
at its recent peak (decaying by half every ``peak_half_life`` packets) so one
calm second between bursts does not undo it. On a clean link J stays near
zero and a frame plays on the first tick after it arrives (20 ms at most);
jitter raises J and the depth follows within a few packets.

The delay grows by itself too: a frame not there on its tick with nothing
behind it is an underrun (silence, then rebuffering to the depth), and the
frames after it play that much later. It comes back down by shedding: over
each ``shrink_after`` ticks (3 s) the fewest frames held at a tick is noted,
and what exceeded the depth all along is dropped, one frame per tick, only
frames that ``quiet`` calls silent when it is given (a pause, where no one
hears it). rtp.JitterBuffer never sheds, so every underrun in a call (a far
end or a network that stalled once) stays in its delay until the call ends.

The ticker's phase follows the stream (``lead_ms``): a frame that arrives
just after a tick waits almost a whole frame for the next one. When the
measured jitter is below a frame, each ``align_after`` ticks (1 s; None: never) the least
wait of a frame that played with nothing behind it is noted, and the ticker
is asked to bring its next tick forward by that wait less a safety margin
(``jitter_factor`` times the jitter's recent peak, at least
``min_margin_ms``), so a frame plays about that margin after it arrived. The
ticker only moves earlier and by less than a frame; a tick brought too far
forward finds its frame missing, which is an underrun like any other (the
frame plays one tick later) and the next window moves the phase back.

``delay_ms`` is how long the frame played at the last tick was held, measured
from its arrival.

Time comes from ``clock`` (seconds, monotonic), so tests drive it by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

FRAME_MS = 20
FRAME_SAMPLES = 160  # RTP timestamp units per 20 ms frame at 8 kHz
CLOCK_RATE = 8000  # RTP timestamp units per second (G.711)
_DISCONTINUITY = CLOCK_RATE  # a transit change above 1 s is a new stream, not jitter


def quiet_below(decode: Callable[[bytes], np.ndarray], rms: float = 180.0) -> Callable[[bytes], bool]:
    """A ``quiet`` test for payloads ``decode`` turns into int16 PCM: RMS below ``rms`` (180: -45 dBFS).

    Speech is louder than about -35 dBFS; a pause on a phone line is its noise floor, -50 to -70 dBFS.
    """
    def quiet(payload: bytes) -> bool:
        pcm = decode(payload).astype(np.float64)
        return len(pcm) == 0 or float(np.sqrt(np.mean(pcm * pcm))) < rms

    return quiet


def _signed(value: int, bits: int) -> int:
    half = 1 << (bits - 1)
    return ((value + half) & ((1 << bits) - 1)) - half


class AdaptiveJitterBuffer:
    def __init__(self, min_depth: int = 1, max_depth: int = 10, max_frames: int = 50,
                 jitter_factor: float = 3.0, shrink_after: int = 150, peak_half_life: int = 100,
                 align_after: int | None = 50, min_margin_ms: float = 2.0,
                 clock: Callable[[], float] = time.monotonic,
                 quiet: Callable[[bytes], bool] | None = None) -> None:
        if not 1 <= min_depth <= max_depth <= max_frames:
            raise ValueError("need 1 <= min_depth <= max_depth <= max_frames")
        self.min_depth, self.max_depth, self.max_frames = min_depth, max_depth, max_frames
        self.jitter_factor = jitter_factor
        self.shrink_after = shrink_after
        self.clock = clock
        self.quiet = quiet  # payload -> True when it is silence and may be dropped to shrink the delay
        self.align_after, self.min_margin_ms = align_after, min_margin_ms
        self._frames: dict[int, bytes] = {}
        self._arrived: dict[int, float] = {}  # seq -> arrival (s)
        self._next: int | None = None
        self._started = False
        self._jitter = 0.0  # RFC 3550 J, in timestamp units
        self._peak = 0.0  # J's recent peak, decaying by half over ``peak_half_life`` packets
        self._peak_decay = 0.5 ** (1 / peak_half_life)
        self._previous: tuple[float, int, int] | None = None  # (arrival s, timestamp, seq) of the last packet
        self._fewest_held: int | None = None  # in the current shrink window
        self._window_ticks = 0
        self._to_shed = 0
        self._least_wait: float | None = None  # ms, of a frame played alone, in the current alignment window
        self._align_ticks = 0
        self._lead = 0.0
        self.held_ms = 0.0  # how long the frame played at the last tick was held
        self.level = 0  # frames held at the last tick
        self.late = 0
        self.lost = 0
        self.underruns = 0
        self.dropped = 0  # frames shed to bring the delay back down

    @property
    def jitter_ms(self) -> float:
        """The RFC 3550 interarrival jitter estimate, in milliseconds."""
        return self._jitter * 1000 / CLOCK_RATE

    @property
    def delay_ms(self) -> int:
        """How long the frame played at the last tick was held back, from its arrival."""
        return round(self.held_ms)

    @property
    def margin_ms(self) -> float:
        """How long before a tick a frame should arrive, for the jitter measured so far."""
        return max(self.min_margin_ms, self.jitter_factor * self._peak * 1000 / CLOCK_RATE)

    def lead_ms(self) -> float:
        """How much earlier the ticker should make its next tick (0 mostly; see the module docstring)."""
        lead, self._lead = self._lead, 0.0
        return lead

    @property
    def depth(self) -> int:
        """Frames held before playout starts, from the jitter measured so far."""
        extra = round(self.jitter_factor * self._peak * 1000 / CLOCK_RATE / FRAME_MS)
        return max(self.min_depth, min(self.max_depth, 1 + extra))

    def push(self, seq: int, payload: bytes, timestamp: int | None = None, arrival: float | None = None) -> None:
        """One packet as it arrives (``timestamp``: its RTP timestamp; without it, one frame per sequence number)."""
        self._measure(seq, timestamp, self.clock() if arrival is None else arrival)
        if self._next is None:
            self._next = seq
        elif ((seq - self._next) & 0xFFFF) >= 0x8000:
            self.late += 1
            return
        self._frames[seq] = payload
        self._arrived[seq] = self.clock() if arrival is None else arrival
        if len(self._frames) > self.max_frames:  # the far end runs ahead of us: skip to the oldest we hold
            self._next = min(self._frames, key=lambda s: (s - self._next) & 0xFFFF)

    def _measure(self, seq: int, timestamp: int | None, arrival: float) -> None:
        """Update J (RFC 3550 A.8) with this packet's transit time against the previous packet's."""
        if self._previous is None:
            self._previous = (arrival, timestamp if timestamp is not None else seq * FRAME_SAMPLES, seq)
            return
        last_arrival, last_timestamp, last_seq = self._previous
        if timestamp is None:
            timestamp = last_timestamp + _signed(seq - last_seq, 16) * FRAME_SAMPLES
        sent_apart = _signed(timestamp - last_timestamp, 32)
        deviation = abs((arrival - last_arrival) * CLOCK_RATE - sent_apart)
        self._previous = (arrival, timestamp & 0xFFFFFFFF, seq)
        if deviation <= _DISCONTINUITY:
            self._jitter += (deviation - self._jitter) / 16
        self._peak = max(self._jitter, self._peak * self._peak_decay)

    def pop(self) -> bytes | None:
        """The next frame's payload for this tick, or None (silence)."""
        if self._next is None:
            return None
        held = len(self._frames)
        self.level = held
        if not self._started:
            if held < self.depth:
                return None
            self._started = True
            self._fewest_held, self._window_ticks, self._to_shed = None, 0, 0
        self._note_level(held)
        following = (self._next + 1) & 0xFFFF
        if self._to_shed and self._next in self._frames and following in self._frames:
            payload = self._frames[self._next]
            if self.quiet is None or self.quiet(payload):  # drop it and play the one after it now
                del self._frames[self._next]
                self._arrived.pop(self._next, None)
                self._next = (self._next + 1) & 0xFFFF
                self._to_shed -= 1
                self.dropped += 1
        payload = self._frames.pop(self._next, None)
        arrived = self._arrived.pop(self._next, None)
        if payload is None:
            if not self._frames:
                self._started = False  # underrun: rebuffer rather than count a gap as loss
                self.underruns += 1
                return None
            self.lost += 1
        elif arrived is not None:
            self.held_ms = max(0.0, (self.clock() - arrived) * 1000)
            self._note_wait(held)
        self._next = (self._next + 1) & 0xFFFF
        return payload

    def _note_wait(self, held: int) -> None:
        """Over each window of ticks, plan the ticker's lead from the least wait of a frame that played alone."""
        if self.align_after is None:
            return  # the ticker keeps its phase
        if held == 1:
            self._least_wait = self.held_ms if self._least_wait is None else min(self._least_wait, self.held_ms)
        self._align_ticks += 1
        if self._align_ticks >= self.align_after:
            margin = self.margin_ms
            if self._least_wait is not None and margin < FRAME_MS and self._least_wait - margin >= 1:
                self._lead = min(FRAME_MS - 1.0, self._least_wait - margin)
            self._least_wait, self._align_ticks = None, 0

    def _note_level(self, held: int) -> None:
        """Over each window of ticks, plan to shed what stayed above the depth the whole time."""
        self._fewest_held = held if self._fewest_held is None else min(self._fewest_held, held)
        self._window_ticks += 1
        if self._window_ticks >= self.shrink_after:
            self._to_shed = max(0, self._fewest_held - self.depth)
            self._fewest_held, self._window_ticks = None, 0
