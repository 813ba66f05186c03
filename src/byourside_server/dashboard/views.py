"""What the dashboard's pages show, computed from call records as plain values.

Nothing here builds HTML: the templates do, with autoescaping on, so every string a
callee said (turns, quotes, summaries) reaches the page as text, never as markup.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from datetime import datetime

from byourside_server.domain import CallStatus
from byourside_server.store.records import CallRecord
from byourside_server.wire import call_to_json

STATUS_FILTERS = tuple(s.value for s in CallStatus)


def mask_number(e164: str) -> str:
    """``+14155550123`` -> ``+1415•••••23``: enough to tell calls apart, not to dial."""
    if len(e164) <= 7:
        return e164[:2] + "•" * max(0, len(e164) - 2)
    return e164[:5] + "•" * (len(e164) - 7) + e164[-2:]


def clock_time(ms: int | None) -> str:
    if ms is None:
        return ""
    seconds = max(0, ms) // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def duration(seconds: int | None) -> str:
    return "" if seconds is None else f"{seconds // 60}:{seconds % 60:02d}"


@dataclass(frozen=True)
class CallRow:
    id: str
    status: str
    destination: str  # masked
    objective: str
    duration: str
    started: str
    full_destination: str  # shown only when the user asks for full numbers


def call_row(call: CallRecord) -> CallRow:
    objective = call.objective if len(call.objective) <= 90 else call.objective[:89] + "…"
    return CallRow(call.id, call.status.value, mask_number(call.to_number), objective,
                   duration(call.duration_seconds), when(call.started_at or call.created_at), call.to_number)


@dataclass(frozen=True)
class Segment:
    text: str
    field: str | None = None  # the extracted field this stretch of words is evidence for


@dataclass(frozen=True)
class TurnView:
    index: int
    speaker: str
    at: str
    interrupted: bool
    segments: tuple[Segment, ...]
    start_ms: int | None = None  # where the recording plays this turn from


def _segments(text: str, quotes: list[tuple[str, str]]) -> tuple[Segment, ...]:
    """Split ``text`` so each evidence quote found in it is its own segment (first match, no overlap)."""
    spans: list[tuple[int, int, str]] = []
    lowered = text.lower()
    for field, quote in quotes:
        start = lowered.find(quote.lower()) if quote else -1
        if start < 0 or any(start < end and start + len(quote) > begin for begin, end, _ in spans):
            continue
        spans.append((start, start + len(quote), field))
    out: list[Segment] = []
    position = 0
    for begin, end, field in sorted(spans):
        if begin > position:
            out.append(Segment(text[position:begin]))
        out.append(Segment(text[begin:end], field))
        position = end
    if position < len(text) or not out:
        out.append(Segment(text[position:]))
    return tuple(out)


def transcript(call: CallRecord) -> list[TurnView]:
    quotes_by_turn: dict[int, list[tuple[str, str]]] = {}
    for field, item in (call.evidence or {}).items():
        if isinstance(item, dict) and isinstance(item.get("turnIndex"), int) and isinstance(item.get("quote"), str):
            quotes_by_turn.setdefault(item["turnIndex"], []).append((field, item["quote"]))
    return [TurnView(i, turn.speaker, clock_time(turn.start_ms), turn.interrupted,
                     _segments(turn.text, quotes_by_turn.get(i, [])), turn.start_ms)
            for i, turn in enumerate(call.turns or ())]


@dataclass(frozen=True)
class FieldView:
    name: str
    value: str
    quote: str | None
    turn_index: int | None


def fields(call: CallRecord) -> list[FieldView]:
    extracted = call.extracted or {}
    evidence = call.evidence or {}
    out = []
    for spec in call.fields:
        value = extracted.get(spec.name)
        item = evidence.get(spec.name) if isinstance(evidence.get(spec.name), dict) else {}
        quote = item.get("quote") if isinstance(item.get("quote"), str) else None
        index = item.get("turnIndex") if isinstance(item.get("turnIndex"), int) else None
        shown = "—" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        out.append(FieldView(spec.name, shown, quote, index))
    return out


def timeline(call: CallRecord, events: list[tuple[str, str, datetime]]) -> list[tuple[str, str]]:
    """(status, time) from queueing to the end; the store writes an event per status change."""
    steps = [("queued", when(call.created_at))]
    steps += [(status, when(at)) for _, status, at in events if status != "queued"]
    return steps


def raw_json(call: CallRecord, base_url: str) -> str:
    shown = call_to_json(call, base_url=base_url)
    return json.dumps(shown, indent=2, ensure_ascii=False, default=str)


def curl_command(call: CallRecord, base_url: str) -> str:
    """A curl command that places this call again through the API (the key left as $BYS_API_KEY)."""
    body: dict = {"to": call.to_number, "objective": call.objective}
    optional = {"context": call.context, "webhookUrl": call.webhook_url, "callerId": call.from_number,
                "voice": call.voice, "language": call.language, "maxDurationSeconds": call.max_duration_seconds,
                "voicemailMessage": call.voicemail_message}
    body.update({k: v for k, v in optional.items() if v})
    if call.fields:
        body["fields"] = [f.to_json() for f in call.fields]
    if call.metadata:
        body["metadata"] = dict(call.metadata)
    payload = json.dumps(body, indent=2, ensure_ascii=False)
    return (f"curl -s -X POST {shlex.quote(base_url + '/v1/agent/calls')} \\\n"
            '  -H "Authorization: Bearer $BYS_API_KEY" -H "Content-Type: application/json" \\\n'
            f"  -d {shlex.quote(payload)}")
