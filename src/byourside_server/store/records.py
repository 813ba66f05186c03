"""Plain frozen records the store hands out (no ORM objects leave the store)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from byourside_server.domain import CallStatus, FieldSpec, Turn


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    default_caller_id: str | None
    webhook_secret: str
    calls_per_minute: int
    max_concurrent_calls: int
    monthly_minutes: int
    created_at: datetime
    # Consent, disclosure and retention (ext); None: the server's default (compliance/consent.py, retention.py)
    display_name: str | None = None
    ai_disclosure: str | None = None
    record_calls: bool | None = None
    recording_notice: str | None = None
    recording_retention_days: int | None = None
    transcript_retention_days: int | None = None

    @property
    def spoken_name(self) -> str:
        """Whom the callee hears the call is for."""
        return self.display_name or self.name


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    account_id: str
    prefix: str
    last4: str
    name: str | None
    voice: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def display(self) -> str:
        return f"{self.prefix}...{self.last4}"


@dataclass(frozen=True)
class CallRecord:
    id: str
    account_id: str
    status: CallStatus
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
    summary: str | None
    extracted: Mapping[str, Any] | None
    turns: tuple[Turn, ...] | None
    recording_path: str | None
    evidence: Mapping[str, Any] | None
    voicemail_message: str | None
    latency: Any
    end_reason: str | None
    objective_met: bool | None
    duration_seconds: int | None
    created_at: datetime
    dial_started_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested_at: datetime | None
    answered_by: str | None = None  # (ext) an AnsweredBy (domain.py)
    answered_by_evidence: Mapping[str, Any] | None = None
    # Responsible calling (compliance/); defaults for records built before these existed.
    scheduled_at: datetime | None = None
    not_before: datetime | None = None  # a queued call is not claimed before this
    hold_reason: str | None = None
    opt_out: bool | None = None
    retry: Mapping[str, Any] | None = None
    attempt: int | None = None
    attempt_of: str | None = None
    attempts: tuple[str, ...] | None = None
    batch_id: str | None = None
    erased_at: datetime | None = None  # (ext) when DELETE erased its personal data
    transfer_to: tuple[str, ...] = ()  # (ext) people the call may be handed to, in order
    transfer_mode: str = "cold"


def call_from_row(row: Mapping[str, Any]) -> CallRecord:
    turns = row["turns"]
    return CallRecord(
        id=row["id"],
        account_id=row["account_id"],
        status=CallStatus(row["status"]),
        to_number=row["to_number"],
        from_number=row["from_number"],
        objective=row["objective"],
        context=row["context"],
        fields=tuple(FieldSpec(**f) for f in row["fields"]),
        webhook_url=row["webhook_url"],
        voice=row["voice"],
        language=row["language"],
        language_source=row["language_source"],
        max_duration_seconds=row["max_duration_seconds"],
        metadata=row["metadata"] or {},
        summary=row["summary"],
        extracted=row["extracted"],
        turns=None
        if turns is None
        else tuple(Turn(t["speaker"], t["text"], t["startMs"], t["endMs"], bool(t.get("interrupted", False)))
                    for t in turns),
        recording_path=row["recording_path"],
        evidence=row.get("evidence"),
        voicemail_message=row.get("voicemail_message"),
        latency=row.get("latency"),
        end_reason=row["end_reason"],
        objective_met=row["objective_met"],
        duration_seconds=row["duration_seconds"],
        created_at=row["created_at"],
        dial_started_at=row["dial_started_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        cancel_requested_at=row["cancel_requested_at"],
        answered_by=row.get("answered_by"),
        answered_by_evidence=row.get("answered_by_evidence"),
        scheduled_at=row.get("scheduled_at"),
        not_before=row.get("not_before"),
        hold_reason=row.get("hold_reason"),
        opt_out=row.get("opt_out"),
        retry=row.get("retry"),
        attempt=row.get("attempt"),
        attempt_of=row.get("attempt_of"),
        attempts=tuple(row["attempts"]) if row.get("attempts") is not None else None,
        batch_id=row.get("batch_id"),
        erased_at=row.get("erased_at"),
        transfer_to=tuple((row.get("transfer") or {}).get("to") or ()),
        transfer_mode=str((row.get("transfer") or {}).get("mode") or "cold"),
    )


def account_from_row(row: Mapping[str, Any]) -> Account:
    return Account(**{k: row[k] for k in Account.__dataclass_fields__ if k in row})


def key_from_row(row: Mapping[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(**{k: row[k] for k in ApiKeyRecord.__dataclass_fields__})
