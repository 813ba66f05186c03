"""Voice activity detectors compared on the voice bench's callee audio: webrtcvad against Silero VAD.

    .venv/bin/python bench/vad.py [--renders 3] [--phases 4] [--silence-ms 200] [--silero-thresholds 0.5]
                                  [--noise-dbfs -60]

The callee audio is bench/voice.py's: its twelve lines, synthesised by Piper with each "..." an
exact 600 ms pause, through G.711 mu-law, each line followed by 5 s of silence. Every detector
hears the same 20 ms frames offline, one after another (no network, no real time), each from a
fresh instance as a new call would; the stream is heard ``--phases`` times, shifted by a fraction
of a frame each time, so the frame edges fall at different places in the speech.

Against the ground truth (bench/voice.py's: the end of a line is the end of its last 10 ms window
at or above -40 dBFS) it measures, per detector:

- **end lag**: from the end of a line's speech to the start of the detector's closing silence, the
  first frame after the last one it called speech (where the endpointer starts counting silence,
  so the endpointer closes a turn ``end lag + end_silence_ms`` after the end of speech). Negative
  when the detector lets go before the last audible 10 ms (a decaying tail).
- **false ends**: runs of at least ``--silence-ms`` of non-speech inside a line (after its first
  voiced frame, before its closing silence) where the ground truth has no pause of 100 ms or more:
  the detector lost the speech mid-phrase, and a short-silence endpointer would close the turn there.
- **pause ends**: the same runs where the ground truth does pause (Piper's comma pauses of 250-390
  ms, the 600 ms pauses): right, but each is a place a short-silence endpointer would have to judge.
- **in "..." pauses**: the longest non-speech run the detector hears inside each 600 ms pause; an
  endpointer that closes a turn on less silence than that cuts in there (the turn detector decides
  whether it does).
- **silence-only wait**: end lag + (the longest run heard in any "..." pause + one frame): the
  end-of-speech to turn-closed time of a silence-only endpointer set just long enough never to cut
  in at those pauses. A detector that lets go sooner lets go sooner at the pauses too, so this is
  what a faster release buys an endpointer that does not speculate.
- **CPU per frame**: this thread's CPU time inside the classifier call, per 20 ms frame.

Prints figures only; it asserts nothing. See docs/benchmarks-voice.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _harness import machine_facts, machine_load_note
from voice import CALLEE, GAP_SECONDS, SPEECH_FLOOR_DBFS, speak, speech_bounds

from byourside_server.voice.audio import FRAME_MS, FRAME_SAMPLES, TELEPHONE_RATE, ulaw_decode, ulaw_encode
from byourside_server.voice.silero_vad import SileroVad
from byourside_server.voice.vad import LevelGate, webrtc_classifier

WINDOW = TELEPHONE_RATE // 100  # the ground truth's 10 ms windows
MIN_PAUSE_MS = 100  # a quiet run at least this long inside a line is a real pause
LEAD_MS = 1000
LONG_PAUSE_MS = 500  # the "..." pauses (600 ms of digital silence, plus Piper's own quiet tails)
TAIL_SEARCH_MS = 2000  # a detector still calling a line speech this long after its end is not measured


@dataclass(frozen=True)
class Line:
    text: str
    start: int  # first sample at or above the floor, in the stream
    end: int  # one past the last
    pauses: tuple[tuple[int, int], ...]  # quiet runs of MIN_PAUSE_MS or more inside the line (samples)


@dataclass
class Result:
    name: str
    lags: dict[tuple[int, int], float] = field(default_factory=dict)  # (phase, line) -> end lag, ms
    false_ends: int = 0
    pause_ends: int = 0
    unmeasured: int = 0
    pause_silences: list[float] = field(default_factory=list)  # ms of non-speech heard in each "..." pause
    cpu_ns: list[int] = field(default_factory=list)

    def lag(self, q: float) -> float:
        return pct(list(self.lags.values()), q)

    def silence_only_wait(self, q: float) -> float:
        """End of speech -> turn closed, for an endpointer whose silence just outlasts every "..." pause heard."""
        return self.lag(q) + max(self.pause_silences) + FRAME_MS


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def quiet_runs(pcm: np.ndarray) -> list[tuple[int, int]]:
    """(first, one past last) sample of each run of 10 ms windows below the floor lasting MIN_PAUSE_MS+."""
    blocks = pcm[: len(pcm) // WINDOW * WINDOW].astype(np.float64).reshape(-1, WINDOW)
    level = 20 * np.log10(np.sqrt((blocks ** 2).mean(axis=1)) / 32768 + 1e-12)
    runs, begin = [], None
    for index, loud in enumerate(level >= SPEECH_FLOOR_DBFS):
        if not loud and begin is None:
            begin = index
        elif loud and begin is not None:
            if (index - begin) * 10 >= MIN_PAUSE_MS:
                runs.append((begin * WINDOW, index * WINDOW))
            begin = None
    return runs


async def callee_stream(renders: int, noise_dbfs: float | None) -> tuple[np.ndarray, list[Line]]:
    """The callee's lines as bench/voice.py plays them (8 kHz, through mu-law), each rendered
    ``renders`` times (Piper varies its rendering from run to run, as in bench/voice.py), and their
    ground truth."""
    from byourside_server.voice.tts import PiperTTS

    tts = PiperTTS.load("packaged:joe")
    gap = np.zeros(int(GAP_SECONDS * TELEPHONE_RATE), dtype=np.int16)
    pieces, lines, offset = [np.zeros(LEAD_MS * TELEPHONE_RATE // 1000, np.int16)], [], LEAD_MS * 8
    for text in CALLEE * renders:
        speech = ulaw_decode(ulaw_encode(await speak(tts, text)))
        start, end = speech_bounds(speech)
        pauses = tuple((offset + start + a, offset + start + b) for a, b in quiet_runs(speech[start:end]))
        lines.append(Line(text, offset + start, offset + end, pauses))
        pieces += [speech, gap]
        offset += len(speech) + len(gap)
    stream = np.concatenate(pieces)
    if noise_dbfs is not None:  # steady hiss under everything, added before the codec as a line would
        hiss = np.random.default_rng(11).normal(0, 32768 * 10 ** (noise_dbfs / 20), len(stream))
        stream = ulaw_decode(ulaw_encode(np.clip(stream + hiss, -32768, 32767).astype(np.int16)))
    return stream, lines


def classify(make: Callable[[], Callable[[np.ndarray], bool]], stream: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Each frame's verdict from a fresh classifier, and the CPU time each call took."""
    classifier = make()
    frames = stream[: len(stream) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    verdicts = np.zeros(len(frames), dtype=bool)
    cpu = []
    for index, frame in enumerate(frames):
        before = time.thread_time_ns()
        verdicts[index] = bool(classifier(frame))
        cpu.append(time.thread_time_ns() - before)
    return verdicts, cpu


def score(result: Result, phase: int, verdicts: np.ndarray, lines: list[Line], min_silence_frames: int) -> None:
    for number, line in enumerate(lines):
        first = line.start // FRAME_SAMPLES
        limit = min(len(verdicts), (line.end + TAIL_SEARCH_MS * 8) // FRAME_SAMPLES)
        voiced = np.flatnonzero(verdicts[first:limit])
        if len(voiced) == 0 or voiced[-1] + first >= limit - 1:
            result.unmeasured += 1  # never heard, or still speech at the end of the search
            continue
        last_voiced = int(voiced[-1]) + first
        result.lags[phase, number] = (last_voiced + 1) * FRAME_MS - line.end / 8
        # Silence runs between the first and the last voiced frame: speech ends inside the line.
        inside = verdicts[voiced[0] + first:last_voiced + 1]
        long_pauses = [(p0, p1) for p0, p1 in line.pauses if (p1 - p0) / 8 >= LONG_PAUSE_MS]
        heard_in_pause = [0.0] * len(long_pauses)
        run_start = None
        for index, speech in enumerate(inside):
            if not speech and run_start is None:
                run_start = index
            elif speech and run_start is not None:
                a = (voiced[0] + first + run_start) * FRAME_SAMPLES
                b = (voiced[0] + first + index) * FRAME_SAMPLES
                for n, (p0, p1) in enumerate(long_pauses):
                    if p0 < b and a < p1:
                        heard_in_pause[n] = max(heard_in_pause[n], (index - run_start) * FRAME_MS)
                if index - run_start >= min_silence_frames:
                    if any(p0 < b and a < p1 for p0, p1 in line.pauses):
                        result.pause_ends += 1
                    else:
                        result.false_ends += 1
                run_start = None
        result.pause_silences += heard_in_pause


def detectors(thresholds: list[float]) -> dict[str, Callable[[], Callable[[np.ndarray], bool]]]:
    chosen: dict[str, Callable[[], Callable[[np.ndarray], bool]]] = {
        "webrtcvad, aggressiveness 2 (ours today)": lambda: webrtc_classifier(2),
        "webrtcvad, aggressiveness 3": lambda: webrtc_classifier(3),
        **{f"webrtcvad 2, level gate {floor} dBFS": (lambda floor=floor: LevelGate(webrtc_classifier(2), floor))
           for floor in (-40, -45, -50)},
    }
    for threshold in thresholds:
        for rate in (8000, 16000):
            def make(threshold: float = threshold, rate: int = rate) -> SileroVad:
                vad = SileroVad(threshold=threshold, model_rate=rate)
                vad.load()
                return vad

            chosen[f"Silero, {rate // 1000} kHz, threshold {threshold:g}"] = make
    return chosen


def report(results: list[Result], lines: list[Line], phases: int, min_silence_ms: int) -> None:
    real = sum(1 for line in lines for a, b in line.pauses if (b - a) / 8 >= min_silence_ms) * phases
    print(f"{len(lines)} lines x {phases} frame phases = {len(lines) * phases} line ends per detector "
          f"({real} real pauses of {min_silence_ms} ms or more inside them); "
          f"end lag = end of speech (-40 dBFS) -> the detector's closing silence starts; "
          f"false / pause ends = non-speech runs >= {min_silence_ms} ms inside a line without / with a real pause; "
          'in ... pauses = the non-speech heard in each 600 ms "..." pause, p50 / max; silence-only wait = '
          "end lag + the shortest end silence that closes no turn inside a ... pause, p50 / p90")
    print(f"  {'detector':42s} {'end lag p50':>11s} {'p90':>6s} {'min':>6s} {'max':>6s} {'false ends':>10s} "
          f"{'pause ends':>10s} {'in ... pauses':>13s} {'silence-only wait':>17s} {'CPU us/frame':>12s} {'p99':>6s}")
    for r in results:
        cpu_us = [c / 1000 for c in r.cpu_ns]
        lags = list(r.lags.values())
        print(f"  {r.name:42s} {r.lag(50):9.0f}ms {r.lag(90):6.0f} {min(lags):6.0f} {max(lags):6.0f} "
              f"{r.false_ends:10d} {r.pause_ends:10d} {pct(r.pause_silences, 50):6.0f}/{max(r.pause_silences):4.0f}ms"
              f" {r.silence_only_wait(50):9.0f}/{r.silence_only_wait(90):4.0f}ms"
              f" {statistics.fmean(cpu_us):12.1f} {pct(cpu_us, 99):6.0f}"
              + (f"   ({r.unmeasured} line ends not measured)" if r.unmeasured else ""))
    base = results[0]
    print(f"  against {base.name}, line end by line end (this detector's end lag minus ours):")
    for r in results[1:]:
        paired = [r.lags[key] - base.lags[key] for key in r.lags if key in base.lags]
        earlier = sum(1 for d in paired if d < 0)
        print(f"    {r.name:42s} p10 {pct(paired, 10):+5.0f} ms  p50 {pct(paired, 50):+5.0f} ms  "
              f"p90 {pct(paired, 90):+5.0f} ms; earlier on {earlier} of {len(paired)}; p50 lag ratio "
              f"{r.lag(50) / base.lag(50):.2f}; CPU per frame x{statistics.fmean(r.cpu_ns) / statistics.fmean(base.cpu_ns):.0f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", type=int, default=4, help="frame alignments of the stream to hear (1-8)")
    parser.add_argument("--renders", type=int, default=3, help="Piper renderings of the twelve lines to hear")
    parser.add_argument("--silence-ms", type=int, default=200,
                        help="a non-speech run this long inside a line counts as a speech end")
    parser.add_argument("--silero-thresholds", default="0.5")
    parser.add_argument("--noise-dbfs", type=float, default=None, help="add steady hiss at this level")
    args = parser.parse_args()
    facts = machine_facts(None)
    print(f"machine: {facts['CPU']}, {machine_load_note()} (shared with other work)")
    stream, lines = await callee_stream(max(1, args.renders), args.noise_dbfs)
    chosen = detectors([float(t) for t in args.silero_thresholds.split(",")])
    results = {name: Result(name) for name in chosen}
    min_frames = max(1, args.silence_ms // FRAME_MS)
    for phase in range(max(1, min(8, args.phases))):
        shift = phase * FRAME_SAMPLES // max(1, args.phases)
        shifted = np.concatenate([np.zeros(shift, np.int16), stream])
        moved = [Line(li.text, li.start + shift, li.end + shift, tuple((a + shift, b + shift) for a, b in li.pauses))
                 for li in lines]
        for name, make in chosen.items():
            verdicts, cpu = classify(make, shifted)
            results[name].cpu_ns += cpu
            score(results[name], phase, verdicts, moved, min_frames)
    if args.noise_dbfs is not None:
        print(f"with steady hiss at {args.noise_dbfs:g} dBFS under the whole stream")
    report(list(results.values()), lines, max(1, min(8, args.phases)), args.silence_ms)
    print(f"machine after the run: {machine_load_note()}")


if __name__ == "__main__":
    asyncio.run(main())
