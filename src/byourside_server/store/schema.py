"""Table definitions (SQLAlchemy Core). Alembic migrations under migrations/ create them."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):  # noqa: ANN001
        return value.replace(tzinfo=timezone.utc) if value is not None else None


metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("default_caller_id", String(20)),
    Column("webhook_secret", String(80), nullable=False),
    Column("calls_per_minute", Integer, nullable=False),
    Column("max_concurrent_calls", Integer, nullable=False),
    Column("monthly_minutes", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # After a rotation, webhooks are signed with both secrets for a grace period.
    Column("previous_webhook_secret", String(80)),
    Column("webhook_secret_rotated_at", UTCDateTime),
    # Consent, disclosure and retention (compliance/consent.py, compliance/retention.py); None: the default.
    Column("display_name", String(100)),  # whom the callee hears the call is for (default: the account name)
    Column("ai_disclosure", Text),  # the account's AI disclosure wording (always says it is an AI)
    Column("record_calls", Boolean),  # False: no recording is kept (default BYS_RECORD_CALLS)
    Column("recording_notice", String(16)),  # "required" (where the law asks) | "always"
    Column("recording_retention_days", Integer),  # 0: keep forever (default BYS_RECORDING_RETENTION_DAYS)
    Column("transcript_retention_days", Integer),  # 0: keep forever (default BYS_TRANSCRIPT_RETENTION_DAYS)
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("name", String(100)),
    Column("voice", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

phone_numbers = Table(
    "phone_numbers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("e164", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The simulator's fictional caller IDs (+1 NXX 555-01XX), which any sandbox account may hold.
    Column("sandbox", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("account_id", "e164", name="uq_phone_numbers_account_e164"),
    # Every other number belongs to one account only.
    Index("uq_phone_numbers_e164_owned", "e164", unique=True, sqlite_where=text("sandbox = false"),
          postgresql_where=text("sandbox = false")),
)

calls = Table(
    "calls",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("to_number", String(20), nullable=False),
    Column("from_number", String(20), nullable=False),
    Column("objective", Text, nullable=False),
    Column("context", Text),
    Column("fields", JSON, nullable=False),
    Column("webhook_url", Text),
    Column("voice", String(64), nullable=False),
    Column("language", String(35), nullable=False),
    Column("language_source", String(10), nullable=False),
    Column("max_duration_seconds", Integer, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("summary", Text),
    Column("extracted", JSON),
    Column("turns", JSON),
    Column("recording_path", Text),
    Column("evidence", JSON),  # field name -> {quote, turnIndex} backing each extracted value
    Column("voicemail_message", Text),  # what to leave when a voicemail answers (None: hang up)
    Column("latency", JSON),  # per-turn voice latency figures (audio lines)
    Column("answered_by", String(16)),  # human, machine, ivr or unknown (None: never answered)
    Column("answered_by_evidence", JSON),  # what says so: its source and that judge's figures
    Column("end_reason", String(64)),
    Column("objective_met", Boolean),
    Column("duration_seconds", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    Column("dial_started_at", UTCDateTime),  # set once, before dialling: a call is dialled at most once
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTCDateTime),
    Column("cancel_requested_at", UTCDateTime),
    # Responsible calling (compliance/): a queued call is claimable from ``not_before`` (its
    # ``scheduledAt``, or when calling hours open), ``hold_reason`` says why it waits.
    Column("scheduled_at", UTCDateTime),
    Column("not_before", UTCDateTime),
    Column("hold_reason", String(32)),
    Column("opt_out", Boolean),  # the callee asked not to be called again
    Column("retry", JSON),  # the request's retry policy, copied onto every attempt
    Column("attempt", Integer),  # 1 for the first call; None on calls placed before retries existed
    Column("attempt_of", String(36)),  # the first call of the chain (None on the first)
    Column("attempts", JSON),  # on the first call: every attempt's id, in order
    Column("batch_id", String(36)),  # the batch it was placed in (POST /v1/agent/batches)
    Column("erased_at", UTCDateTime),  # DELETE /v1/agent/calls/{id}: personal data erased then
    Column("transfer", JSON),  # {"to": [E.164, ...], "mode": "cold"|"warm"}: who the call may be handed to
    Index("ix_calls_account_created", "account_id", "created_at"),
    Index("ix_calls_status_created", "status", "created_at"),
    Index("ix_calls_account_status", "account_id", "status"),  # active-call counts per account
    Index("ix_calls_ended_at", "ended_at"),  # /metrics: calls that ended in its window
    Index("ix_calls_batch_status", "batch_id", "status"),  # a batch's progress, and whether it has finished
    # The claim's count of an account's calls on the line (store/compliance.py): claimed queued calls by lease.
    Index("ix_calls_account_status_lease", "account_id", "status", "lease_expires_at"),
    Index("ix_calls_account_status_created", "account_id", "status", "created_at"),  # list ?status= newest first
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("call_id", String(36), nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Every status change writes one row here in the same transaction: the outbox that
# webhook delivery reads, so a crash between the change and its event loses nothing.
call_events = Table(
    "call_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("call_id", String(36), ForeignKey("calls.id"), nullable=False, index=True),
    Column("account_id", String(36), nullable=False),
    Column("event", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# The webhook outbox: one row per event to deliver, written in the same transaction as
# the status change (store/calls.py ``_transition``). ``payload`` is the JSON body as
# built at event time; ``id`` is the event's ``eventId``, the same on every retry.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("call_id", String(36), ForeignKey("calls.id"), nullable=False),
    Column("event", String(32), nullable=False),
    Column("url", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed | gone
    Column("attempt_count", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime),  # None once finished
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Index("ix_webhook_deliveries_call_id", "call_id"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

# Every delivery attempt; the primary key makes each attempt number recordable once.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("delivery_id", String(40), ForeignKey("webhook_deliveries.id"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("worker_id", String(64), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),  # delivered | http_error | gone | timeout | network_error | blocked
    Column("http_status", Integer),
    Column("error", String(300)),
    Column("duration_ms", Integer, nullable=False),
)

# Dashboard sign-in (dashboard/users.py). Tokens are stored only as SHA-256 hashes: each
# carries 256 random bits, so a fast hash is safe and a leaked table signs nobody in.
dashboard_users = Table(
    "dashboard_users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False, index=True),
    Column("email", String(254), nullable=False, unique=True),  # stored lower-cased
    Column("role", String(16), nullable=False),  # member | operator (sees every account)
    Column("password_hash", String(200)),  # scrypt$<log2 n>$<r>$<p>$<salt>$<hash>; None until set
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_sign_in_at", UTCDateTime),
)

dashboard_sign_in_links = Table(
    "dashboard_sign_in_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("dashboard_users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),  # single use: set by the one conditional UPDATE that consumes it
)

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("dashboard_users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Failed sign-in attempts, one row each, counted per subject ("email:<sha256>" or "ip:<address>")
# over a sliding window; rows older than the window are pruned as new ones arrive.
dashboard_sign_in_failures = Table(
    "dashboard_sign_in_failures",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("subject", String(100), nullable=False),
    Column("failed_at", UTCDateTime, nullable=False),
    Index("ix_dashboard_sign_in_failures_subject", "subject", "failed_at"),
)


# The do-not-call list, per account: a number here is never dialled for that account.
suppressions = Table(
    "suppressions",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("e164", String(20), primary_key=True),
    Column("source", String(16), nullable=False),  # api | cli | csv | opt_out
    Column("call_id", String(36)),  # the call in which the callee opted out
    Column("note", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
)

# An account's calling hours in the callee's local time; no row: the defaults (settings).
calling_hours = Table(
    "calling_hours",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("start_minute", Integer, nullable=False),  # minutes after local midnight
    Column("end_minute", Integer, nullable=False),
    Column("days", String(32), nullable=False),  # "mon,tue,wed,thu,fri,sat,sun"
    Column("updated_at", UTCDateTime, nullable=False),
)


# Usage as running totals (store/usage.py), written in the transaction that ends a call.
# Month and day are UTC, of the call's creation (the minute cap counts a call in the month it
# was placed). The minute cap reads one ``usage_months`` row; ``GET /v1/agent/usage`` reads days.
usage_months = Table(
    "usage_months",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("month", String(7), primary_key=True),  # "2026-12"
    Column("calls", Integer, nullable=False),  # calls that ended
    Column("seconds", Integer, nullable=False),  # their answered seconds (durationSeconds)
)

usage_days = Table(
    "usage_days",
    metadata,
    Column("account_id", String(36), ForeignKey("accounts.id"), primary_key=True),
    Column("day", String(10), primary_key=True),  # "2026-12-01"
    Column("status", String(16), primary_key=True),  # the final status
    Column("calls", Integer, nullable=False),
    Column("seconds", Integer, nullable=False),
)

# A batch of calls placed together (POST /v1/agent/batches): its calls carry ``batch_id``.
batches = Table(
    "batches",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("accounts.id"), nullable=False),
    Column("status", String(16), nullable=False),  # running | finished | canceled
    Column("total", Integer, nullable=False),  # calls created
    Column("rejected", Integer, nullable=False),  # rows refused when it was created
    Column("webhook_url", Text),  # where batch.finished is sent
    Column("metadata", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("canceled_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Index("ix_batches_account_created", "account_id", "created_at"),
)
