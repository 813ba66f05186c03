"""The adaptive jitter buffer (telephony/sip/jitter.py) on synthetic packet timings, with a hand-driven clock.

A far end sends frame k at k * 20 ms; it arrives ``delay[k]`` ms later; our
ticker pops every 20 ms at a fixed offset. Everything happens on a simulated
clock, in order of time: no real time passes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from byourside_server.telephony.sip.jitter import AdaptiveJitterBuffer, quiet_below
from byourside_server.telephony.sip.rtp import JitterBuffer

FRAME_MS = 20
START_SEQ = 65_000  # so every run crosses the 16-bit sequence wrap
START_TS = 2**32 - 160 * 300  # and the 32-bit timestamp wrap


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def payload(k: int, quiet: bool = False) -> bytes:
    return (b"Q" if quiet else b"S") + k.to_bytes(4, "big")


def frame_of(data: bytes) -> int:
    return int.from_bytes(data[1:], "big")


def simulate(buffer, clock: Clock, delays_ms, tick_offset_ms: float = 5.0, lost=frozenset(),
             quiet=lambda k: False) -> list[tuple[int, int | None]]:
    """(tick, frame played or None) for every tick until well after the last arrival."""
    arrivals = [(k * FRAME_MS + d, 0, k) for k, d in enumerate(delays_ms) if k not in lost]
    last = max(t for t, _, _ in arrivals)
    ticks = [(tick_offset_ms + FRAME_MS * j, 1, j) for j in range(int(last // FRAME_MS) + 20)]
    played = []
    for at, kind, k in sorted(arrivals + ticks):  # an arrival at the same instant as a tick comes first
        clock.now = at / 1000
        if kind == 0 and isinstance(buffer, JitterBuffer):  # today's buffer takes no timestamp
            buffer.push((START_SEQ + k) & 0xFFFF, payload(k, quiet(k)))
        elif kind == 0:
            buffer.push((START_SEQ + k) & 0xFFFF, payload(k, quiet(k)), (START_TS + 160 * k) & 0xFFFFFFFF)
        else:
            data = buffer.pop()
            played.append((k, None if data is None else frame_of(data)))
    return played


def glitches(played: list[tuple[int, int | None]], after_tick: int = 0) -> int:
    """Silent ticks between the first and the last frame played (underruns and losses alike)."""
    heard = [i for i, (_, k) in enumerate(played) if k is not None]
    return sum(1 for tick, k in played[heard[0]:heard[-1]] if k is None and tick >= after_tick)


def delays_of(played: list[tuple[int, int | None]], tick_offset_ms: float = 5.0) -> dict[int, float]:
    """Frame -> ms from its sending to the tick that played it."""
    return {k: tick_offset_ms + FRAME_MS * tick - FRAME_MS * k for tick, k in played if k is not None}


def test_a_clean_link_plays_each_frame_on_the_first_tick_after_it_arrives():
    clock = Clock()
    buffer = AdaptiveJitterBuffer(clock=clock)
    wobble = np.random.default_rng(1).uniform(0, 0.5, 500)  # a loopback's scheduling noise
    played = simulate(buffer, clock, 3 + wobble)
    assert [k for _, k in played if k is not None] == list(range(500))
    assert glitches(played) == 0
    assert (buffer.lost, buffer.late, buffer.underruns) == (0, 0, 1)  # the one underrun: the stream's end
    assert buffer.depth == 1 and buffer.jitter_ms < 0.5
    assert max(delays_of(played).values()) <= 3.5 + FRAME_MS  # the wait for the next tick, no more


def test_the_depth_grows_under_jitter_and_the_playout_stays_whole():
    delays = np.random.default_rng(2).uniform(0, 60, 1000)  # 0-60 ms: packets overtake each other
    clock = Clock()
    adaptive = AdaptiveJitterBuffer(clock=clock)
    played = simulate(adaptive, clock, delays)
    assert 15 < adaptive.jitter_ms < 25  # RFC 3550 J of uniform 0-60 ms transit: E|d1 - d2| = 20 ms
    assert adaptive.depth >= 3
    heard = [k for _, k in played if k is not None]
    assert heard == sorted(heard)  # reordered by sequence number
    assert glitches(played, after_tick=50) == 0  # after the first second, not one silent tick
    assert adaptive.late + adaptive.lost <= 5
    delays = delays_of(played)
    assert all(60 <= delays[k] <= 100 for k in range(100, 1000))  # the spread of the jitter, and a tick or two


def test_the_delay_comes_back_down_in_a_pause_when_the_jitter_stops():
    rng = np.random.default_rng(3)
    delays = np.concatenate([rng.uniform(0, 60, 250), 3 + rng.uniform(0, 0.5, 750)])  # 5 s rough, 15 s clean
    clock = Clock()
    fixed = JitterBuffer(depth=3)  # today's: what the rough seconds added stays for the rest of the call
    fixed_delays = delays_of(simulate(fixed, clock, delays))
    assert min(fixed_delays[k] for k in range(900, 1000)) >= 60
    clock = Clock()

    def quiet(k: int) -> bool:
        return (k // 100) % 2 == 1  # 2 s of speech, 2 s of silence, ...

    buffer = AdaptiveJitterBuffer(clock=clock, quiet=lambda data: data[:1] == b"Q")
    played = simulate(buffer, clock, delays, quiet=quiet)
    assert buffer.depth == 1
    assert buffer.dropped > 0
    delays_played = delays_of(played)
    assert max(delays_played[k] for k in range(900, 1000)) <= 3.5 + FRAME_MS  # back to one tick
    skipped = set(range(1000)) - set(delays_played)
    assert len(skipped) == buffer.dropped + buffer.lost + buffer.late
    dropped = skipped - {k for k in skipped if delays[k] > 20}  # the late ones came in the rough part
    assert all(quiet(k) for k in dropped)  # only silence was shed


def test_a_lost_packet_is_played_as_silence_and_the_tick_spent_waiting_for_it_is_won_back_in_a_pause():
    clock = Clock()
    buffer = AdaptiveJitterBuffer(clock=clock, quiet=lambda data: data[:1] == b"Q")
    played = simulate(buffer, clock, [3.0] * 500, lost={40}, quiet=lambda k: k >= 60)
    frames = [k for _, k in played]
    at = frames.index(39)
    # One frame deep, the buffer waits a tick for the missing frame (an underrun), then counts it lost
    # and plays silence in its place, as rtp.JitterBuffer does: the frames after it play a tick later.
    assert frames[at:at + 4] == [39, None, None, 41]
    assert buffer.lost == 1
    delays = delays_of(played)
    assert delays[41] == delays[39] + FRAME_MS
    assert delays[499] == delays[39]  # the extra tick was shed in the silence after frame 60
    assert buffer.dropped == 1


def test_the_depth_holds_through_a_calm_second_between_bursts_and_settles_after_a_calm_spell():
    clock = Clock()
    buffer = AdaptiveJitterBuffer(clock=clock)
    rng = np.random.default_rng(4)
    delays = np.concatenate([rng.uniform(0, 60, 100), np.full(550, 3.0)])  # 2 s rough, then clean
    for k, delay in enumerate(delays):
        clock.now = (k * FRAME_MS + delay) / 1000
        buffer.push(k, b"x", 160 * k)
        if k == 99:
            rough = buffer.depth
        if k == 149:
            assert buffer.jitter_ms < 2  # J itself forgets within a second
            assert buffer.depth >= rough - 1 >= 2  # the depth does not
    assert buffer.depth == 1  # ten calm seconds later it does


def test_the_delay_reported_is_how_long_the_played_frame_was_held():
    clock = Clock()
    buffer = AdaptiveJitterBuffer(clock=clock)
    for k in range(3):  # a burst: three frames in at once
        buffer.push(k, b"x", 160 * k)
    clock.now = 0.005
    assert buffer.pop() == b"x" and buffer.delay_ms == 5
    clock.now = 0.025
    assert buffer.pop() == b"x" and buffer.delay_ms == 25


def simulate_aligned(buffer, clock: Clock, delays_ms, first_tick_ms: float = 0.0,
                     lost=frozenset(), order=None) -> tuple[list[tuple[float, int | None]], list[float]]:
    """As ``simulate``, with a ticker that follows ``lead_ms`` as RtpSession's does: (tick ms, frame played
    or None) per tick, and the leads taken. ``order`` may swap arrivals (a reordering network)."""
    arrivals = sorted((k * FRAME_MS + d, k) for k, d in enumerate(delays_ms) if k not in lost)
    if order is not None:
        arrivals = order(arrivals)
    last = max(t for t, _ in arrivals)
    played, leads, tick, i = [], [], first_tick_ms, 0
    while tick < last + 20 * FRAME_MS:
        while i < len(arrivals) and arrivals[i][0] <= tick:
            at, k = arrivals[i]
            clock.now = at / 1000
            buffer.push((START_SEQ + k) & 0xFFFF, payload(k), (START_TS + 160 * k) & 0xFFFFFFFF)
            i += 1
        clock.now = tick / 1000
        data = buffer.pop()
        played.append((tick, None if data is None else frame_of(data)))
        lead = buffer.lead_ms()
        if lead:
            leads.append(lead)
        tick += FRAME_MS - lead
    return played, leads


def test_on_a_clean_link_the_ticks_move_up_to_just_after_each_frame_arrives():
    clock = Clock()
    buffer = AdaptiveJitterBuffer(clock=clock)
    wobble = np.random.default_rng(2).uniform(0, 0.5, 500)  # a loopback's scheduling noise
    # Each frame arrives 3 ms after it is sent, 17 ms before our next tick: it would wait 17 ms for nothing.
    played, leads = simulate_aligned(buffer, clock, 3 + wobble)
    assert [k for _, k in played if k is not None] == list(range(500))
    assert buffer.lost == buffer.late == 0 and buffer.underruns == 1  # the stream's end
    waits = [tick - (k * FRAME_MS + 3 + wobble[k]) for tick, k in played if k is not None]
    assert max(waits[:50]) > 15  # before the first window (1 s) the phase is as it came
    assert max(waits[100:]) <= buffer.min_margin_ms + 0.6  # then a frame waits the margin, no more
    assert 1 <= len(leads) <= 2 and all(0 < lead < FRAME_MS for lead in leads)


def test_under_jitter_above_a_frame_the_ticks_keep_their_phase():
    clock = Clock()
    buffer = AdaptiveJitterBuffer(clock=clock)
    delays = np.random.default_rng(3).uniform(0, 40, 500)  # a jittery link: the depth, not the phase, absorbs it
    played, leads = simulate_aligned(buffer, clock, delays)
    assert leads == []
    assert [k for _, k in played if k is not None][:400] == list(range(400))


def test_with_the_ticks_moved_up_reordered_and_lost_packets_still_play_in_order():
    clock = Clock()
    buffer = AdaptiveJitterBuffer(clock=clock)
    wobble = np.random.default_rng(4).uniform(0, 0.5, 600)

    def swap_pairs(arrivals):  # from 2 s on, every 50th pair of packets arrives the other way round
        out = list(arrivals)
        for j in range(100, len(out) - 1, 50):
            (t1, k1), (t2, k2) = out[j], out[j + 1]
            out[j], out[j + 1] = (t1, k2), (t2, k1)
        return out

    lost = frozenset({250, 400})
    played, leads = simulate_aligned(buffer, clock, 3 + wobble, lost=lost, order=swap_pairs)
    heard = [k for _, k in played if k is not None]
    assert heard == sorted(heard) and len(set(heard)) == len(heard)  # never out of order, never twice
    assert not set(heard) & lost
    assert len(heard) >= 600 - len(lost) - 10  # a reordered packet that misses its tick is dropped as late
    assert buffer.late + buffer.lost >= len(lost)
    assert leads and all(0 < lead < FRAME_MS for lead in leads)


def test_rfc3550_jitter_estimate():
    clock = Clock()
    buffer = AdaptiveJitterBuffer(clock=clock)
    transit_ms = [0, 10, 0, 10]  # every packet's transit differs from the last one's by 10 ms (80 units)
    for k, transit in enumerate(transit_ms):
        clock.now = (k * FRAME_MS + transit) / 1000
        buffer.push(k, b"x", 160 * k)
    j = 0.0
    for _ in range(3):
        j += (80 - j) / 16
    assert buffer.jitter_ms == pytest.approx(j / 8)


def test_without_timestamps_each_sequence_number_is_one_frame():
    clock = Clock()
    buffer = AdaptiveJitterBuffer(clock=clock)
    for k in range(200):
        clock.now = k * FRAME_MS / 1000
        buffer.push((START_SEQ + k) & 0xFFFF, b"x")
    assert buffer.jitter_ms == pytest.approx(0, abs=1e-6)


def test_quiet_frames_are_told_from_speech_by_their_decoded_level():
    from byourside_server.voice.audio import G711

    line_noise = np.random.default_rng(5).normal(0, 33, 160).astype(np.int16)  # a -60 dBFS noise floor
    for codec in (G711(0), G711(8)):
        quiet = quiet_below(codec.decode)
        assert quiet(codec.silence) and quiet(codec.encode(line_noise))
        assert not quiet(codec.encode(np.full(160, 400, np.int16)))  # -38 dBFS: soft speech


def test_bad_depths_are_refused():
    with pytest.raises(ValueError):
        AdaptiveJitterBuffer(min_depth=0)
    with pytest.raises(ValueError):
        AdaptiveJitterBuffer(min_depth=5, max_depth=3)


def test_the_fixed_buffers_own_test_passes_with_the_depth_pinned():
    """The scenario of test_sip_protocol's fixed-buffer test, unchanged, on the adaptive one."""
    clock = Clock()
    jb = AdaptiveJitterBuffer(min_depth=3, max_depth=3, clock=clock)
    jb.push(65534, b"a")
    assert jb.pop() is None  # still filling
    jb.push(0, b"c")  # out of order, across the sequence wrap
    jb.push(65535, b"b")
    assert [jb.pop(), jb.pop(), jb.pop()] == [b"a", b"b", b"c"]
    jb.push(2, b"e")
    jb.push(1, b"d")
    jb.push(4, b"g")  # 3 never arrives
    assert [jb.pop(), jb.pop(), jb.pop(), jb.pop()] == [b"d", b"e", None, b"g"]
    assert jb.lost == 1
    jb.push(3, b"too late")
    assert jb.late == 1
    assert jb.pop() is None  # drained: rebuffers instead of counting loss
    assert jb.lost == 1


operations = st.lists(st.one_of(st.just(None), st.integers(min_value=-3, max_value=60)), max_size=300)


@settings(max_examples=200, deadline=None)
@given(operations, st.integers(min_value=1, max_value=5))
def test_with_the_depth_pinned_it_plays_exactly_what_the_fixed_buffer_plays(ops, depth):
    """Any order of pushes (None = a tick) gives the same output and counts as rtp.JitterBuffer."""
    fixed = JitterBuffer(depth=depth)
    pinned = AdaptiveJitterBuffer(min_depth=depth, max_depth=depth, shrink_after=10**9, clock=Clock())
    for op in ops:
        if op is None:
            assert pinned.pop() == fixed.pop()
        else:
            seq = (65_530 + op) & 0xFFFF
            fixed.push(seq, seq.to_bytes(2, "big"))
            pinned.push(seq, seq.to_bytes(2, "big"))
        assert (pinned.lost, pinned.late) == (fixed.lost, fixed.late)


def test_the_rtp_session_plays_inbound_audio_through_the_adaptive_buffer():
    """RtpSession pushes each packet with its RTP timestamp; a frame is held from its arrival to the tick."""
    import struct

    from byourside_server.telephony.sip.rtp import RtpSession
    from byourside_server.voice.audio import G711

    session = RtpSession()
    heard: list[np.ndarray] = []
    session.on_frame = lambda inbound, outbound: heard.append(inbound)
    codec = G711(0)
    loud = (8000 * np.sin(np.arange(160) / 4)).astype(np.int16)
    clock = Clock()
    session.jitter.clock = clock
    for k in range(5):
        clock.now = k * 0.020
        header = struct.pack("!BBHII", 0x80, 0, (START_SEQ + k) & 0xFFFF, (START_TS + 160 * k) & 0xFFFFFFFF, 1234)
        session.datagram_received(header + codec.encode(loud), ("127.0.0.1", 9))
        session._tick()
    assert isinstance(session.jitter, AdaptiveJitterBuffer)
    assert all(np.abs(frame.astype(np.int32)).max() > 4000 for frame in heard)  # every tick played a frame
    assert session.jitter.delay_ms == 0 and session.jitter.lost == session.jitter.late == 0  # played as it came


class SentPackets:
    """A datagram transport that keeps what the RTP session sends."""

    def __init__(self) -> None:
        self.packets = []

    def sendto(self, data: bytes, addr) -> None:
        from byourside_server.telephony.sip.rtp import parse_rtp

        self.packets.append(parse_rtp(data))

    def close(self) -> None:
        pass


async def test_a_reply_is_a_talkspurt_whose_first_frame_leaves_as_it_is_queued():
    """Between replies silence goes out on the ticks; a reply's first packet leaves inside ``play``, marked, and
    the stream stays one packet per frame with timestamps one frame apart, through the reply and after it."""
    import asyncio

    from byourside_server.telephony.sip.rtp import RtpSession

    session = RtpSession()
    transport = SentPackets()
    session.connection_made(transport)
    session.start(("127.0.0.1", 9), 0, None)
    try:
        while len(transport.packets) < 3:  # some silence first
            await asyncio.sleep(0.005)
        before = len(transport.packets)
        playback = session.play(np.full(160 * 4, 3000, np.int16))  # four frames
        first = transport.packets[before:]
        assert len(first) == 1 and first[0].marker  # sent at once, not on the next tick
        assert session.talkspurt_starts and session.talkspurt_starts[-1] <= session.clock_ms()
        await playback
        done = session.mark()
        await done
        while len(transport.packets) < before + 6:  # and silence after it
            await asyncio.sleep(0.005)
    finally:
        await session.close()
    sent = transport.packets
    assert [p.seq for p in sent] == [(sent[0].seq + i) & 0xFFFF for i in range(len(sent))]
    assert [p.timestamp for p in sent] == [(sent[0].timestamp + 160 * i) & 0xFFFFFFFF for i in range(len(sent))]
    assert [p.marker for p in sent].count(True) == 1
    assert [p.payload != sent[0].payload for p in sent[before:before + 5]] == [True] * 4 + [False]
