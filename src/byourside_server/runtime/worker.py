"""A worker: claims queued calls up to its concurrency, keeps their leases alive,
passes on cancel requests, reaps calls whose worker vanished, and purges recordings and
transcripts past their account's retention (compliance/retention.py).

Many workers (in many processes) can share one store: claiming is atomic, and
a worker that loses a lease abandons that call without writing to it.

A database outage stops heartbeats everywhere, so afterwards every lease looks
expired. A worker therefore reaps only once it has reached the store for a
whole lease period: the workers still holding those calls renew them first.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import structlog

from byourside_server.compliance.retention import RetentionJob
from byourside_server.runtime.session import CallSession, SessionDeps, StoreRetry
from byourside_server.services import Services
from byourside_server.store.notify import CALL_QUEUED, CANCEL_REQUESTED, asyncpg_dsn, listen_forever
from byourside_server.errors import StoreUnavailable

log = structlog.get_logger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    def __init__(self, services: Services, deps: SessionDeps, *, concurrency: int, worker_id: str | None = None) -> None:
        self.services = services
        self.deps = deps
        self.concurrency = max(1, concurrency)
        self.worker_id = worker_id or new_worker_id()
        self.sessions: dict[str, tuple[CallSession, asyncio.Task]] = {}
        self._stopping = asyncio.Event()
        self._store_reachable_since: float | None = None  # on the clock's monotonic scale; None: not (yet) seen
        self._store_down = False
        settings = services.settings
        self.store_retry = StoreRetry(
            clock=services.clock,
            give_up_after_seconds=settings.call_write_retry_seconds,
            max_delay_seconds=max(0.1, settings.heartbeat_seconds),  # retry at least as often as the heartbeat
        )

    async def run(self) -> None:
        """Run until ``stop()``; then wait for the calls in hand to finish."""
        log.info("worker_started", worker_id=self.worker_id, concurrency=self.concurrency)
        background = [asyncio.create_task(self._upkeep_loop()),
                      asyncio.create_task(RetentionJob(self.services).run(self._stopping))]
        if not self.services.db.is_sqlite:
            signals = self.services.signals
            handlers = {CALL_QUEUED: signals.call_queued.set, CANCEL_REQUESTED: signals.cancel_requested.set}
            dsn = asyncpg_dsn(self.services.settings.effective_database_url)
            background.append(asyncio.create_task(listen_forever(dsn, handlers)))
        try:
            await self._claim_loop()
        finally:
            for task in background:
                task.cancel()
            if self.sessions:
                await asyncio.gather(*(task for _, task in self.sessions.values()), return_exceptions=True)
            log.info("worker_stopped", worker_id=self.worker_id)

    def stop(self) -> None:
        self._stopping.set()
        self.services.signals.call_queued.set()

    async def _claim_loop(self) -> None:
        settings = self.services.settings
        queued = self.services.signals.call_queued
        while not self._stopping.is_set():
            claimed = False
            if len(self.sessions) < self.concurrency:
                try:
                    claimed = await self._claim_one()
                except StoreUnavailable:
                    await asyncio.sleep(settings.poll_seconds * 4)
                    continue
            if claimed:
                continue
            queued.clear()
            try:
                await asyncio.wait_for(queued.wait(), timeout=settings.poll_seconds)
            except asyncio.TimeoutError:
                pass

    async def _claim_one(self) -> bool:
        settings = self.services.settings
        call = await self.services.calls.claim_next(self.worker_id, settings.lease_seconds)
        if call is None:
            return False
        if call.id in self.sessions:
            # Our own call, whose lease lapsed before its session marked it dialling (a slow store):
            # the claim renewed the lease for that session. A second session would dial it again.
            return True
        account = await self.services.accounts.get(call.account_id)
        if account is None:  # cannot happen with foreign keys; never dial without an account
            await self.services.calls.release(call.id, self.worker_id)
            return False
        session = CallSession(self.deps, call, account, self.worker_id, retry=self.store_retry)
        task = asyncio.create_task(self._run_session(session), name=f"call-{call.id}")
        self.sessions[call.id] = (session, task)
        return True

    async def _run_session(self, session: CallSession) -> None:
        try:
            await session.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("session_error", call_id=session.call.id)
        finally:
            self.sessions.pop(session.call.id, None)
            self.services.signals.call_queued.set()  # a slot is free

    async def _upkeep_loop(self) -> None:
        settings = self.services.settings
        cancel_signal = self.services.signals.cancel_requested
        while True:
            cancel_signal.clear()
            try:
                await asyncio.wait_for(cancel_signal.wait(), timeout=settings.heartbeat_seconds)
            except asyncio.TimeoutError:
                pass
            try:
                await self._heartbeat()
                if not await self._store_steady():
                    continue
                reaped = await self.services.calls.reap_expired()
                for call_id in reaped:
                    log.warning("call_reaped_worker_lost", call_id=call_id)
            except StoreUnavailable:
                if not self._store_down:
                    log.warning("heartbeat_store_unavailable", worker_id=self.worker_id)
                self._store_down, self._store_reachable_since = True, None
            except Exception:
                log.exception("upkeep_error", worker_id=self.worker_id)

    async def _store_steady(self) -> bool:
        """Whether expired leases may be reaped: this worker has reached the store for a whole lease period."""
        clock = self.services.clock
        if self._store_reachable_since is None:
            if not await self.services.db.ping():
                raise StoreUnavailable()
            self._store_reachable_since = clock.monotonic()
            if self._store_down:
                log.info("store_reachable_again", worker_id=self.worker_id)
                self._store_down = False
        return clock.monotonic() - self._store_reachable_since >= self.services.settings.lease_seconds

    async def _heartbeat(self) -> None:
        ids = list(self.sessions)
        lost, canceled = await self.services.calls.heartbeat(self.worker_id, ids, self.services.settings.lease_seconds)
        for call_id in canceled:
            entry = self.sessions.get(call_id)
            if entry:
                entry[0].cancel_requested.set()
        for call_id in lost:
            entry = self.sessions.get(call_id)
            if entry:
                log.warning("lease_lost", call_id=call_id)
                entry[1].cancel()
