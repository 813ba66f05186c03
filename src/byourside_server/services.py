"""The composition root: builds the store, repos, guardrail policy and providers from settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from byourside_server.clock import Clock, SystemClock
from byourside_server.compliance import batch_events
from byourside_server.compliance.service import Compliance
from byourside_server.guardrails.numbers import DestinationPolicy, load_irsf_prefixes
from byourside_server.recordings import RecordingStore, build_recording_store
from byourside_server.settings import Settings
from byourside_server.store.accounts import AccountRepo, Limits
from byourside_server.store.batches import BatchRepo
from byourside_server.store.calls import CallRepo
from byourside_server.store.compliance import ComplianceRepo
from byourside_server.store.database import Database, open_database
from byourside_server.store.suppressions import SuppressionRepo
from byourside_server.store.usage import UsageRepo
from byourside_server.webhooks.events import enqueue_for_transition


@dataclass
class Signals:
    """In-process wake-ups between the API and workers sharing a process.

    Workers also poll the store, so these only shorten latency; other processes
    notice the same changes on their next poll or heartbeat.
    """

    call_queued: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    accounts: AccountRepo
    calls: CallRepo
    destination_policy: DestinationPolicy
    signals: Signals
    recordings: RecordingStore | None = None  # build_services always sets it (BYS_RECORDING_STORE)
    compliance: Compliance | None = None  # build_services always sets it (calling hours, do-not-call, retries)
    suppressions: SuppressionRepo | None = None  # the do-not-call lists
    batches: BatchRepo | None = None  # POST /v1/agent/batches
    usage: UsageRepo | None = None  # build_services always sets it (running totals, GET /v1/agent/usage)

    @property
    def default_limits(self) -> Limits:
        s = self.settings
        return Limits(s.default_calls_per_minute, s.default_max_concurrent_calls, s.default_monthly_minutes)

    async def aclose(self) -> None:
        await self.db.dispose()
        if self.recordings is not None:
            await self.recordings.aclose()


def build_services(settings: Settings, *, clock: Clock | None = None, db: Database | None = None) -> Services:
    clock = clock or SystemClock()
    db = db or open_database(
        settings.effective_database_url,
        connect_timeout_seconds=settings.db_connect_timeout_seconds,
        statement_timeout_seconds=settings.db_statement_timeout_seconds,
    )
    policy = DestinationPolicy(
        allowed_regions=settings.allowed_region_set,
        irsf_prefixes=load_irsf_prefixes(settings.irsf_extra_file),
    )
    suppressions = SuppressionRepo(db, clock)
    compliance = Compliance(settings, clock, suppressions, ComplianceRepo(db, clock))

    async def on_transition(conn, call, status, now):  # noqa: ANN001, ANN202
        # In each status change's transaction: an ended call's opt-out and next attempt, then the
        # webhook outbox, whose event shows the call as those left it (optOut, attempts).
        call = await compliance.after_transition(conn, call, status, now)
        event_id = await enqueue_for_transition(conn, call, status, now)
        await batch_events.after_transition(conn, call, status, now)  # the batch's last call: batch.finished
        return event_id

    return Services(
        settings=settings,
        clock=clock,
        db=db,
        accounts=AccountRepo(db, clock, key_cache_seconds=settings.api_key_cache_seconds),
        calls=CallRepo(db, clock, on_transition=on_transition),
        destination_policy=policy,
        signals=Signals(),
        recordings=build_recording_store(settings),
        compliance=compliance,
        suppressions=suppressions,
        batches=BatchRepo(db, clock),
        usage=UsageRepo(db),
    )
