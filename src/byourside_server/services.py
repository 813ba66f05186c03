"""The composition root: builds the store, repos, guardrail policy and providers from settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from byourside_server.clock import Clock, SystemClock
from byourside_server.guardrails.numbers import DestinationPolicy, load_irsf_prefixes
from byourside_server.recordings import RecordingStore, build_recording_store
from byourside_server.settings import Settings
from byourside_server.store.accounts import AccountRepo, Limits
from byourside_server.store.calls import CallRepo
from byourside_server.store.database import Database, open_database
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
    return Services(
        settings=settings,
        clock=clock,
        db=db,
        accounts=AccountRepo(db, clock),
        # The webhook outbox rides in each status change's transaction.
        calls=CallRepo(db, clock, on_transition=enqueue_for_transition),
        destination_policy=policy,
        signals=Signals(),
        recordings=build_recording_store(settings),
    )
