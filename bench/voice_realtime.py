"""The time our side adds to a realtime speech-to-speech model's turns, against a fixed-latency fake provider.

    .venv/bin/python bench/voice_realtime.py [--turns 10] [--model-latency-ms 300]

The realtime brain (agent/realtime/) talks to the fake OpenAI Realtime server
(tests/providers/fake_openai_realtime.py, on loopback, on its own event loop in a thread) over a media channel
that runs on a real 20 ms clock. The callee speaks for a second, then is quiet
until the agent has answered; the fake model answers each turn after a fixed
``--model-latency-ms``. Measured, on one perf_counter clock:

- ``in``: a callee frame handed to the brain by the media channel -> the fake
  server has received it (upsampling, base64, JSON, the WebSocket send and
  loopback). Frames carry their number in their samples (a constant level per
  frame), so each append is matched to the frame it carries.
- ``out_play``: the fake sends a reply's first audio -> our ``play`` of it
  (loopback, JSON, base64, downsampling, the brain).
- ``out_wire``: the same, to the moment its first frame leaves on the 20 ms
  frame clock (adds the wait for the next frame slot, 10 ms on average).
- ``baseline_in``: the same append messages sent by a bare ``websockets``
  client to the same server, beside the run: the transport's own floor.

Prints percentiles and the ratio of ``in`` to its baseline; asserts nothing.
Aim (issue 12): our added time ``in`` + ``out_play`` p50 <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "providers"))
sys.path.insert(0, str(ROOT / "bench"))

from _harness import machine_load_note  # noqa: E402
from fake_openai_realtime import FakeOpenAIRealtime, Step  # noqa: E402

from byourside_server.agent.offline import OfflineBrain  # noqa: E402
from byourside_server.agent.realtime import RealtimeCall  # noqa: E402
from byourside_server.agent.realtime.conversation import RealtimeBrain  # noqa: E402
from byourside_server.agent.realtime.openai import OpenAIRealtime  # noqa: E402
from byourside_server.domain import CallTask  # noqa: E402
from byourside_server.telephony.media import FRAME_SAMPLES, AudioFrame, MediaChannel, Playback  # noqa: E402

CYCLE = 250  # frame numbers repeat every 5 s: far longer than any delay measured
SPEECH_LEVEL, QUIET_LEVEL = 3000, 20  # a frame's level is its number (mod CYCLE) plus one of these


class ClockedMedia(MediaChannel):
    """A real-time 20 ms media clock; the callee speaks ``speech_ms``, then waits for the agent to answer."""

    def __init__(self, turns: int, speech_ms: int = 1000) -> None:
        super().__init__()
        self.turns_left, self.speech_frames = turns, speech_ms // 20
        self.speaking = 0  # frames of speech still to send
        self.agent_spoke = True  # the callee may start its first turn
        self.ticks = 0
        self.queued: collections.deque[tuple[np.ndarray, Playback, int]] = collections.deque()
        self.yielded: dict[int, list[float]] = collections.defaultdict(list)  # frame number mod CYCLE -> times
        self.plays: list[tuple[float, int]] = []  # (perf_counter of play(), play number)
        self.first_frame_out: dict[int, float] = {}  # play number -> perf_counter its first frame left
        self._events: asyncio.Queue = asyncio.Queue()
        self._quiet_frames = 0
        self._clock = asyncio.get_running_loop().create_task(self._run())

    async def events(self):  # noqa: ANN201
        while (event := await self._events.get()) is not None:
            self.yielded[(event.at_ms // 20) % CYCLE].append(time.perf_counter())
            yield event

    def play(self, pcm: np.ndarray) -> Playback:
        number = len(self.plays)
        self.plays.append((time.perf_counter(), number))
        playback = Playback(len(pcm))
        for start in range(0, len(pcm), FRAME_SAMPLES):
            frame = pcm[start:start + FRAME_SAMPLES]
            self.queued.append((np.pad(frame, (0, FRAME_SAMPLES - len(frame))), playback, number))
        return playback

    def clear(self) -> None:
        for _, playback, _ in self.queued:
            playback.finish()
        self.queued.clear()

    def mark(self) -> asyncio.Future[None]:
        raise NotImplementedError

    async def send_digits(self, digits: str) -> None:
        pass

    async def hangup(self) -> None:
        if not self.ended.is_set():
            self._mark_ended(by_far_end=False)
            self.clear()
            self._events.put_nowait(None)
            self._clock.cancel()

    def elapsed_ms(self) -> int:
        return self.ticks * 20

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            at = self.ticks * 20
            outbound = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            if self.queued:
                outbound, playback, number = self.queued.popleft()
                playback.advance(at)
                self.first_frame_out.setdefault(number, time.perf_counter())
                self.agent_spoke = True
                self._quiet_frames = 0
            else:
                self._quiet_frames += 1
            if not self.speaking and self.agent_spoke and self._quiet_frames >= 30 and self.turns_left:
                self.speaking, self.agent_spoke = self.speech_frames, False
                self.turns_left -= 1
            level = (SPEECH_LEVEL if self.speaking else QUIET_LEVEL) + self.ticks % CYCLE
            self.speaking = max(0, self.speaking - 1)
            self.ticks += 1
            self._events.put_nowait(AudioFrame(np.full(FRAME_SAMPLES, level, dtype=np.int16), outbound, at))
            await asyncio.sleep(max(0.0, start + self.ticks * 0.02 - loop.time()))


def frame_number(level: int) -> int | None:
    base = SPEECH_LEVEL if level >= SPEECH_LEVEL else QUIET_LEVEL
    number = level - base
    return number if 0 <= number < CYCLE else None


def matched_in_delays(media: ClockedMedia, appends: list[tuple[float, int]]) -> list[float]:
    delays = []
    for received, level in appends:
        number = frame_number(level)
        if number is None:
            continue
        sent = [t for t in media.yielded.get(number, []) if t <= received]
        if sent:
            delays.append((received - sent[-1]) * 1000)
    return delays


def matched_out_delays(media: ClockedMedia, sent_times: list[float]) -> tuple[list[float], list[float]]:
    to_play, to_wire = [], []
    for sent in sent_times:
        after = [(t, n) for t, n in media.plays if t >= sent]
        if not after:
            continue
        played, number = after[0]
        to_play.append((played - sent) * 1000)
        if number in media.first_frame_out:
            to_wire.append((media.first_frame_out[number] - sent) * 1000)
    return to_play, to_wire


async def baseline_in(url: str, config: dict, count: int) -> list[float]:
    """The same append messages from a bare websockets client: send -> the server has them."""
    from websockets.asyncio.client import connect

    fake_appends_before = len(SERVER.appends)
    delays = []
    async with connect(f"{url}?model=bench", additional_headers={"Authorization": "Bearer sk-test"}) as socket:
        await socket.recv()
        await socket.send(json.dumps({"type": "session.update", "session": config}))
        await socket.recv()
        for i in range(count):
            level = QUIET_LEVEL + i % CYCLE
            payload = json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(
                np.full(FRAME_SAMPLES * 3, level, dtype="<i2").tobytes()).decode()})
            sent = time.perf_counter()
            await socket.send(payload)
            while len(SERVER.appends) <= fake_appends_before + i:
                await asyncio.sleep(0)
            delays.append((SERVER.appends[fake_appends_before + i][0] - sent) * 1000)
            await asyncio.sleep(0.02)
    return delays


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<12} no samples"
    q = statistics.quantiles(values, n=100) if len(values) > 1 else [values[0]] * 99
    return f"{name:<12} n={len(values):<5} p50={statistics.median(values):6.2f} ms  p90={q[89]:6.2f} ms  p99={q[98]:6.2f} ms"


SERVER: FakeOpenAIRealtime


async def main() -> None:
    global SERVER
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--model-latency-ms", type=int, default=300)
    args = parser.parse_args()
    steps = [Step("a short reply")] * args.turns
    # The fake provider runs on its own event loop in its own thread, as a remote service would not share ours.
    SERVER = FakeOpenAIRealtime(steps, first_audio_delay=args.model_latency_ms / 1000)
    provider_loop = asyncio.new_event_loop()
    threading.Thread(target=provider_loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(SERVER.start(), provider_loop).result()
    media = ClockedMedia(args.turns)
    task = CallTask(call_id="bench", to="+14155550123", from_number="+14155550100", objective="Bench.",
                    context=None, fields=(), language="en-US", voice="alloy", account_name="bench",
                    max_duration_seconds=3600)
    brain = RealtimeBrain(OpenAIRealtime("sk-test", url=SERVER.url), OfflineBrain(), first_words_after_seconds=None)

    async def turns(_) -> None:  # noqa: ANN001
        pass

    call = asyncio.ensure_future(brain.converse_media(task, media, RealtimeCall(turns)))
    while (media.turns_left or media.speaking or len(SERVER.first_audio_sent) < args.turns) and not call.done():
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)  # the last reply plays out
    in_delays = matched_in_delays(media, SERVER.appends)
    to_play, to_wire = matched_out_delays(media, SERVER.first_audio_sent)
    call.cancel()
    await asyncio.gather(call, return_exceptions=True)
    await media.hangup()
    base = await baseline_in(SERVER.url, SERVER.sessions[0], 500)
    asyncio.run_coroutine_threadsafe(SERVER.aclose(), provider_loop).result()
    provider_loop.call_soon_threadsafe(provider_loop.stop)

    print(f"realtime brain against the fake OpenAI Realtime server, {args.turns} turns, "
          f"model latency {args.model_latency_ms} ms; {machine_load_note()}")
    print(summary("in", in_delays))
    print(summary("baseline_in", base))
    print(summary("out_play", to_play))
    print(summary("out_wire", to_wire))
    if in_delays and base:
        print(f"in / baseline_in (p50): {statistics.median(in_delays) / statistics.median(base):.2f}x")
    if in_delays and to_play:
        added = statistics.median(in_delays) + statistics.median(to_play)
        print(f"our added time per turn (in + out_play, p50): {added:.2f} ms (aim <= 20 ms)")


if __name__ == "__main__":
    asyncio.run(main())
