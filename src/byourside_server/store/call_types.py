"""What goes into and comes out of ``CallRepo`` (store/calls.py): a new call to create,
the result of creating it, a finished call's outcome, and the /metrics snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

from byourside_server.domain import CallStatus, FieldSpec, Turn
from byourside_server.store.records import CallRecord


@dataclass(frozen=True)
class NewCall:
    to_number: str
    from_number: str
    objective: str
    context: str | None
    fields: tuple[FieldSpec, ...]
    webhook_url: str | None
    voice: str
    language: str
    language_source: str
    max_duration_seconds: int
    metadata: Mapping[str, str]
    voicemail_message: str | None = None
    # Responsible calling (compliance/): claimable from ``not_before`` (None: at once), and why it waits.
    scheduled_at: datetime | None = None
    not_before: datetime | None = None
    hold_reason: str | None = None
    retry: Mapping[str, Any] | None = None  # the retry policy as the call shows it (compliance/retry.py)
    transfer: Mapping[str, Any] | None = None  # {"to": [...], "mode": ...}: who the call may be handed to


@dataclass(frozen=True)
class CallMetrics:
    """What /metrics shows: calls in progress now, and the calls that ended in the window."""

    active: Mapping[str, int]  # status -> calls in it now
    ended: Mapping[str, int]  # status -> calls that ended in the window
    latencies: Sequence[Mapping[str, Any]]  # the ``latency`` reports of those calls (audio calls only)


@dataclass(frozen=True)
class Created:
    call: CallRecord | None  # None when an idempotent replay returned a stored response
    response: Mapping[str, Any]
    replayed: bool


@dataclass(frozen=True)
class CallOutcome:
    """What a worker writes when a call ends."""

    status: CallStatus
    end_reason: str  # an EndReason, or EndReason.error(token)
    summary: str | None = None
    extracted: Mapping[str, Any] | None = None
    turns: Sequence[Turn] | None = None
    objective_met: bool | None = None
    duration_seconds: int | None = None
    recording_path: str | None = None
    evidence: Mapping[str, Any] | None = None
    latency: Any = None
    answered_by: str | None = None  # an AnsweredBy (domain.py); None when the call was never answered
    answered_by_evidence: Mapping[str, Any] | None = None
