"""The call page's two pictures, drawn server-side as SVG (no charting library, no script):

- the recording's waveform, one lane per channel (left: the callee, right: the agent, as
  the SIP recorder writes them), from the peaks of the stored 16-bit WAV;
- per-turn voice latency as stacked bars, one per agent reply, split by stage;
- the usage page's ended calls per day, stacked by final status.

Only numbers reach these drawings: no text a caller or callee wrote.
"""

from __future__ import annotations

import io
import sys
import wave
from array import array
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Sequence

from byourside_server.domain import LATENCY_STAGES
from byourside_server.recordings import LocalRecordingStore, RecordingNotFound, RecordingStore, is_s3_reference
from byourside_server.recordings.base import RecordingStoreUnavailable

WAVE_COLUMNS = 600  # horizontal resolution of the waveform
WAVE_LANE = 60  # height of one channel's lane, in SVG units
MAX_RECORDING_BYTES = 200 * 1024 * 1024  # a 10-minute stereo 8 kHz call is about 20 MB
LANE_NAMES = ("callee", "agent")


async def read_recording(store: RecordingStore | None, reference: str) -> bytes | None:
    """The whole recording, or None when it is gone, unreadable, or implausibly large."""
    source = store if is_s3_reference(reference) else LocalRecordingStore(Path("."))  # opens the path as given
    if source is None:
        return None
    try:
        stream = await source.open(reference)
    except (RecordingNotFound, RecordingStoreUnavailable, OSError):
        return None
    data = bytearray()
    try:
        async for chunk in stream.chunks:
            data += chunk
            if len(data) > MAX_RECORDING_BYTES:
                return None
    finally:
        await stream.close()
    return bytes(data)


def channel_peaks(wav_bytes: bytes, columns: int = WAVE_COLUMNS) -> list[list[float]] | None:
    """Per channel, the loudest sample of each of ``columns`` slices, from 0 to 1; None unless 16-bit PCM."""
    try:
        with wave.open(io.BytesIO(wav_bytes)) as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() not in (1, 2):
                return None
            channels = wav.getnchannels()
            samples = array("h", wav.readframes(wav.getnframes()))
    except (wave.Error, EOFError):
        return None
    if sys.byteorder == "big":
        samples.byteswap()
    frames = len(samples) // channels
    if frames == 0:
        return None
    lanes = []
    for channel in range(channels):
        own = samples[channel::channels]
        step = max(1, frames // columns)
        peaks = []
        for start in range(0, frames, step):
            piece = own[start:start + step]
            peaks.append(max(max(piece), -min(piece)) / 32768)
        lanes.append(peaks[:columns])
    return lanes


def waveform_svg(lanes: list[list[float]]) -> str:
    """One lane per channel, mirrored bars around its middle line."""
    width = max(len(lane) for lane in lanes)
    height = WAVE_LANE * len(lanes)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'preserveAspectRatio="none" role="img" aria-label="waveform">']
    for index, lane in enumerate(lanes):
        middle = WAVE_LANE * index + WAVE_LANE / 2
        colour = "#8a5a00" if index == 0 else "#1f4e79"
        path = "".join(f"M{x} {middle - p * WAVE_LANE / 2 * 0.95:.1f}V{middle + p * WAVE_LANE / 2 * 0.95 + 0.5:.1f}"
                       for x, p in enumerate(lane))
        parts.append(f'<path d="{path}" stroke="{colour}" stroke-width="1" fill="none"/>')
        if index:
            parts.append(f'<line x1="0" x2="{width}" y1="{WAVE_LANE * index}" y2="{WAVE_LANE * index}" '
                         'stroke="#d9dee5"/>')
    parts.append("</svg>")
    return "".join(parts)


async def recording_waveform(store: RecordingStore | None, reference: str) -> str | None:
    data = await read_recording(store, reference)
    lanes = channel_peaks(data) if data else None
    return waveform_svg(lanes) if lanes else None


# Latency


STAGE_LABELS = {"endpointingMs": "end of speech", "sttMs": "speech to text", "llmFirstTokenMs": "model first token",
                "ttsFirstAudioMs": "first audio"}
STAGE_COLOURS = {"endpointingMs": "#9db4cf", "sttMs": "#5b86b5", "llmFirstTokenMs": "#1f4e79", "ttsFirstAudioMs": "#e0a030"}
CHART_HEIGHT = 120
BAR_WIDTH = 22
BAR_GAP = 8


@dataclass(frozen=True)
class Segment:
    y: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Bar:
    x: float
    segments: tuple[Segment, ...]
    total_ms: int
    label_y: float
    turn: int


@dataclass(frozen=True)
class LatencyChart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    max_ms: int
    p50_ms: int | None
    p90_ms: int | None
    legend: tuple[tuple[str, str], ...]


def latency_chart(report: Any) -> LatencyChart | None:
    """Stacked bars of each reply's stages (the call's ``latency`` report), or None without one."""
    turns = report.get("turns") if isinstance(report, dict) else None
    if not isinstance(turns, list) or not turns:
        return None
    stages = [s for s in LATENCY_STAGES if s != "totalMs"]

    def ms(turn: Any, key: str) -> int:
        value = turn.get(key) if isinstance(turn, dict) else None
        return int(value) if isinstance(value, (int, float)) and value >= 0 else 0

    totals = [ms(t, "totalMs") or sum(ms(t, s) for s in stages) for t in turns]
    top = max(max(totals), max((sum(ms(t, s) for s in stages) for t in turns), default=0), 1)
    scale = (CHART_HEIGHT - 16) / top
    bars = []
    for index, turn in enumerate(turns):
        x = BAR_GAP + index * (BAR_WIDTH + BAR_GAP)
        y = float(CHART_HEIGHT)
        segments = []
        for stage in stages:
            height = ms(turn, stage) * scale
            if height <= 0:
                continue
            y -= height
            segments.append(Segment(round(y, 1), round(height, 1), STAGE_COLOURS[stage],
                                    f"{STAGE_LABELS[stage]}: {ms(turn, stage)} ms"))
        bars.append(Bar(x, tuple(segments), totals[index], round(min(y, CHART_HEIGHT - totals[index] * scale) - 3, 1),
                        index + 1))
    p50 = report.get("p50", {}).get("totalMs") if isinstance(report.get("p50"), dict) else None
    p90 = report.get("p90", {}).get("totalMs") if isinstance(report.get("p90"), dict) else None
    return LatencyChart(width=BAR_GAP + len(turns) * (BAR_WIDTH + BAR_GAP), height=CHART_HEIGHT,
                        bars=tuple(bars), max_ms=top,
                        p50_ms=p50 if isinstance(p50, int) else None, p90_ms=p90 if isinstance(p90, int) else None,
                        legend=tuple((STAGE_LABELS[s], STAGE_COLOURS[s]) for s in stages))


# Calls per day by final status

STATUS_COLOURS = {"completed": "#2e8b57", "no_answer": "#d4a017", "voicemail": "#e0a030", "declined": "#c0504d",
                  "failed": "#8a1c1c"}
DAY_BAR = 14
DAY_GAP = 4


@dataclass(frozen=True)
class DayBar:
    x: float
    day: str
    total: int
    segments: tuple[Segment, ...]
    label: str  # the day of the month under every seventh bar, else ""


@dataclass(frozen=True)
class DayChart:
    width: int
    height: int
    bars: tuple[DayBar, ...]
    top: int
    legend: tuple[tuple[str, str], ...]


def calls_per_day_chart(days: Sequence[Any], last_day: date, count: int) -> DayChart:
    """Stacked bars of the ended calls of each of the ``count`` days up to ``last_day``, by final status.
    ``days`` holds rows with ``day`` ("YYYY-MM-DD"), ``status`` and ``calls`` (store/usage.py)."""
    by_day: dict[str, dict[str, int]] = {}
    for row in days:
        by_day.setdefault(row.day, {})[row.status] = by_day.get(row.day, {}).get(row.status, 0) + row.calls
    top = max([sum(v.values()) for v in by_day.values()] + [1])
    scale = (CHART_HEIGHT - 14) / top
    bars = []
    for index in range(count):
        day = last_day - timedelta(days=count - 1 - index)
        key = day.isoformat()
        counts = by_day.get(key, {})
        y = float(CHART_HEIGHT - 12)
        segments = []
        for status, colour in STATUS_COLOURS.items():
            if counts.get(status):
                height = counts[status] * scale
                y -= height
                segments.append(Segment(round(y, 1), round(height, 1), colour, f"{key}: {counts[status]} {status}"))
        bars.append(DayBar(DAY_GAP + index * (DAY_BAR + DAY_GAP), key, sum(counts.values()), tuple(segments),
                           str(day.day) if (count - 1 - index) % 7 == 0 else ""))
    return DayChart(width=DAY_GAP + count * (DAY_BAR + DAY_GAP), height=CHART_HEIGHT, bars=tuple(bars), top=top,
                    legend=tuple(STATUS_COLOURS.items()))
