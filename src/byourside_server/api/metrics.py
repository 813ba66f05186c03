"""``GET /metrics``: operator metrics in the Prometheus text format (version 0.0.4).

Everything is read from the store, so one scrape of any API process sees the
calls of every worker process: calls in progress now by status, calls that
ended in the last ``BYS_METRICS_WINDOW_SECONDS`` by status, and the per-turn
voice latency of those calls by stage as a summary (p50, p90, p99, sum,
count). No account, number or transcript appears in it.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from byourside_server.domain import ACTIVE_STATUSES, LATENCY_STAGES
from byourside_server.store.call_types import CallMetrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
QUANTILES = (("0.5", 50), ("0.9", 90), ("0.99", 99))
STAGE_LABELS = {"endpointingMs": "endpointing", "sttMs": "stt", "llmFirstTokenMs": "llm_first_token",
                "ttsFirstAudioMs": "tts_first_audio", "totalMs": "total"}


def _samples(name: str, help_text: str, kind: str, rows: Iterable[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {_number(value)}" for labels, value in rows]
    return lines


def percentile(values: list[int], p: float) -> int:
    """Nearest-rank percentile of a non-empty list (the rule the per-call latency report uses)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def turn_values(latencies: Sequence[Mapping[str, Any]], stage: str) -> list[int]:
    values = []
    for report in latencies:
        for turn in report.get("turns") or []:
            value = turn.get(stage) if isinstance(turn, Mapping) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values.append(int(value))
    return values


def render(metrics: CallMetrics, window_seconds: int) -> str:
    lines = _samples("byourside_metrics_window_seconds", "How far back the ended-call metrics look.", "gauge",
                     [("", window_seconds)])
    lines += _samples("byourside_calls_active", "Calls queued, dialing or in progress now.", "gauge",
                      [(f'{{status="{s.value}"}}', metrics.active.get(s.value, 0))
                       for s in sorted(ACTIVE_STATUSES, key=lambda s: s.value)])
    lines += _samples("byourside_calls_ended", "Calls that ended in the window, by terminal status.", "gauge",
                      [(f'{{status="{status}"}}', count) for status, count in sorted(metrics.ended.items())])
    by_stage = {STAGE_LABELS[stage]: turn_values(metrics.latencies, stage) for stage in LATENCY_STAGES}
    rows = [(f'{{stage="{label}",quantile="{q}"}}', percentile(values, p))
            for label, values in by_stage.items() if values for q, p in QUANTILES]
    lines += _samples("byourside_voice_turn_latency_ms",
                      "End of the callee's speech to the agent's first audio, per turn and by stage, "
                      "over audio calls that ended in the window.", "summary", rows)
    for label, values in by_stage.items():
        lines.append(f'byourside_voice_turn_latency_ms_sum{{stage="{label}"}} {sum(values)}')
        lines.append(f'byourside_voice_turn_latency_ms_count{{stage="{label}"}} {len(values)}')
    return "\n".join(lines) + "\n"
