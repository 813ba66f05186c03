"""The call's JSON shape: call records to the wire shapes of spec section 4 (every key
always present), and the one JSON encoder for what we send (responses, webhook bodies).

Neutral ground: the HTTP edge, webhook events, the MCP tools and the evals all read it,
and it reads only the vocabulary and the store's records.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable

from byourside_server.domain import CallStatus, transcript_text
from byourside_server.guardrails.text import scrub
from byourside_server.store.records import CallRecord


def json_text(value: Any) -> str:
    """Compact JSON (UTF-8 text, not ``\\u`` escapes) that cannot fail on stored data:
    a lone surrogate becomes U+FFFD and a non-finite number null, so a row written
    before validation, or odd model output, never turns a read or an event into an error."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:  # NaN or an infinity somewhere
        return json.dumps(scrub(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return scrub(text)
    return text


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def call_to_json(
    call: CallRecord, *, base_url: str = "", recording_url: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """The call object. ``recording_url`` builds a signed link; without it the plain route is given.

    Scrubbed (guardrails/text.py): text a row holds from before validation, or from a
    model, cannot make a read, a list or a webhook event fail."""
    turns = call.turns
    waiting = call.status is CallStatus.QUEUED and call.hold_reason is not None
    return scrub({
        "id": call.id,
        "callId": call.id,
        "status": call.status.value,
        "to": call.to_number,
        "from": call.from_number,
        "objective": call.objective,
        "context": call.context,
        "fields": [f.to_json() for f in call.fields],
        "language": call.language,
        "languageSource": call.language_source,
        "voice": call.voice,
        "summary": call.summary,
        "extracted": dict(call.extracted) if call.extracted is not None else None,
        "transcript": transcript_text(turns) if turns is not None else None,
        "turns": [t.to_json() for t in turns] if turns is not None else None,
        "recordingUrl": _recording_url(call, base_url, recording_url),
        "createdAt": iso(call.created_at),
        "startedAt": iso(call.started_at),
        "endedAt": iso(call.ended_at),
        "durationSeconds": call.duration_seconds,
        "endReason": call.end_reason,
        "objectiveMet": call.objective_met,
        "metadata": dict(call.metadata),
        "voicemailMessage": call.voicemail_message,
        "evidence": dict(call.evidence) if call.evidence is not None else None,
        "latency": call.latency,
        "answeredBy": call.answered_by,
        "answeredByEvidence": dict(call.answered_by_evidence) if call.answered_by_evidence is not None else None,
        "maxDurationSeconds": call.max_duration_seconds,
        "cancelRequested": call.cancel_requested_at is not None,
        # Responsible calling (ext): when it may be dialled and why a queued call waits, opt-out, retries
        "scheduledAt": iso(call.scheduled_at),
        "heldUntil": iso(call.not_before) if waiting else None,
        "holdReason": call.hold_reason if waiting else None,
        "optOut": bool(call.opt_out),
        "retry": dict(call.retry) if call.retry is not None else None,
        "attempt": call.attempt or 1,
        "attemptOf": call.attempt_of,
        "attempts": list(call.attempts) if call.attempts is not None else None,
        "batchId": call.batch_id,
        "erasedAt": iso(call.erased_at),  # (ext) DELETE erased its personal data then
        "transferTo": list(call.transfer_to) if call.transfer_to else None,
        "transferMode": call.transfer_mode if call.transfer_to else None,
    })


def _recording_url(call: CallRecord, base_url: str, signed: Callable[[str], str] | None) -> str | None:
    if not call.recording_path:
        return None
    return signed(call.id) if signed else f"{base_url}/v1/agent/calls/{call.id}/recording"


def created_response(call: CallRecord) -> dict[str, Any]:
    return {
        "callId": call.id,
        "status": call.status.value,
        "language": call.language,
        "languageSource": call.language_source,
        "voice": call.voice,
    }
