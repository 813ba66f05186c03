"""The delivery loop: claims due webhook deliveries, sends them signed, records every attempt.

It runs beside the call worker (``byourside serve`` and ``byourside worker``).
Any number of loops, in any number of processes, can share one store: each
attempt is leased (see ``store.py``). The loop sleeps until the next delivery
is due, a poll interval passes, or (on PostgreSQL) another process queues an
event and notifies.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from byourside_server.errors import StoreUnavailable
from byourside_server.services import Services
from byourside_server.settings import Settings
from byourside_server.store.notify import asyncpg_dsn, listen_forever
from byourside_server.webhooks.events import WEBHOOK_DUE, absolute_body
from byourside_server.webhooks.sender import AttemptResult, WebhookSender
from byourside_server.webhooks.signing import (
    EVENT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    USER_AGENT,
    signature_header,
)
from byourside_server.webhooks.store import Claimed, WebhookRepo

log = structlog.get_logger(__name__)

# The lease covers one attempt: the send timeout plus room for recording it.
_LEASE_MARGIN_SECONDS = 30.0
# Never idle for less than this, so a due row another loop just took cannot make this one spin.
_MIN_IDLE_SECONDS = 0.01


@dataclass(frozen=True)
class RetrySchedule:
    """Delays before each attempt (the first is usually 0), randomised by +/- ``jitter``."""

    delays: tuple[float, ...]
    jitter: float = 0.1

    @classmethod
    def parse(cls, text: str, jitter: float = 0.1) -> RetrySchedule:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
        if not delays or any(d < 0 for d in delays):
            raise ValueError("the webhook retry schedule needs at least one non-negative delay")
        return cls(delays, jitter)

    @property
    def max_attempts(self) -> int:
        return len(self.delays)

    def delay_before(self, attempt: int, rand: Callable[[], float] = random.random) -> float | None:
        """Seconds to wait before attempt number ``attempt`` (1-based); None when none is left."""
        if attempt > len(self.delays):
            return None
        base = self.delays[attempt - 1]
        return max(0.0, base * (1 + self.jitter * (2 * rand() - 1)))


def signed_headers(event: str, event_id: str, body: bytes, secrets: Sequence[str], now: float) -> dict[str, str]:
    """Every header a webhook request carries, the signature over ``body`` at time ``now`` included."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(body, secrets, int(now)),
        EVENT_ID_HEADER: event_id,
        EVENT_HEADER: event,
    }


def build_sender(settings: Settings, **overrides: object) -> WebhookSender:
    """A sender with the settings' timeout and address rules; ``overrides`` replace any option."""
    options: dict[str, object] = {
        "timeout_seconds": settings.webhook_timeout_seconds,
        "allow_http": settings.webhook_allow_http,
        "allow_private": settings.webhook_allow_private,
    }
    options.update(overrides)
    return WebhookSender(**options)  # type: ignore[arg-type]


class DeliveryWorker:
    """One delivery loop; ``sender`` and ``schedule`` are injectable (tests use short schedules)."""

    def __init__(
        self,
        services: Services,
        *,
        worker_id: str,
        sender: WebhookSender | None = None,
        schedule: RetrySchedule | None = None,
        concurrency: int | None = None,
    ) -> None:
        settings = services.settings
        self.services = services
        self.worker_id = worker_id
        self.sender = sender or build_sender(settings)
        self.schedule = schedule or RetrySchedule.parse(settings.webhook_retry_schedule, settings.webhook_retry_jitter)
        self.concurrency = max(1, concurrency or settings.webhook_concurrency)
        self.repo = WebhookRepo(services.db, services.clock, secret_grace_seconds=settings.webhook_secret_grace_seconds)
        self.lease_seconds = self.sender.timeout_seconds + _LEASE_MARGIN_SECONDS
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Deliver until ``stop()``; attempts already under way are finished and recorded first.

        Up to ``concurrency`` attempts are in flight; whenever one ends, more due rows
        are claimed, so one slow receiver never holds up the others.
        """
        log.info("webhook_delivery_started", worker_id=self.worker_id)
        listener = None
        if not self.services.db.is_sqlite:
            dsn = asyncpg_dsn(self.services.settings.effective_database_url)
            listener = asyncio.create_task(listen_forever(dsn, {WEBHOOK_DUE: self.wake}))
        in_flight: set[asyncio.Task[None]] = set()
        poll = self.services.settings.webhook_poll_seconds
        try:
            while not self._stopping.is_set():
                self._wake.clear()  # set again by any attempt ending from here on
                timeout = poll
                free = self.concurrency - len(in_flight)
                if free > 0:
                    try:
                        claimed = await self.repo.claim_due(self.worker_id, self.lease_seconds, free)
                        for row in claimed:
                            task = asyncio.create_task(self._guarded_attempt(row))
                            in_flight.add(task)
                            task.add_done_callback(self._attempt_done(in_flight))
                        if len(claimed) == free:
                            continue  # maybe more are due
                        timeout = await self._idle_timeout(poll)
                    except StoreUnavailable:
                        log.warning("webhook_store_unavailable", worker_id=self.worker_id)
                    except Exception:  # never let one bad row end delivery for the whole process
                        log.exception("webhook_delivery_error", worker_id=self.worker_id)
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout)
                except TimeoutError:
                    pass
        finally:
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
            if listener:
                listener.cancel()
            await self.sender.aclose()
            log.info("webhook_delivery_stopped", worker_id=self.worker_id)

    def _attempt_done(self, in_flight: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            self._wake.set()  # a slot is free

        return done

    async def _idle_timeout(self, poll: float) -> float:
        """Seconds until the next unleased delivery is due, at most ``poll``."""
        due = await self.repo.next_due_at()
        if due is None:
            return poll
        return min(poll, max(_MIN_IDLE_SECONDS, (due - self.services.clock.now()).total_seconds()))

    async def _guarded_attempt(self, claimed: Claimed) -> None:
        try:
            await self._attempt(claimed)
        except Exception as exc:  # noqa: BLE001 - its lease expires and the attempt is made again
            log.error("webhook_attempt_error", delivery_id=claimed.id, error=type(exc).__name__)

    async def _attempt(self, claimed: Claimed) -> None:
        body = absolute_body(claimed.payload, self.services.settings.effective_public_base_url)
        headers = signed_headers(claimed.event, claimed.id, body, claimed.secrets, time.time())
        started_at = self.services.clock.now()
        result: AttemptResult = await self.sender.send(claimed.url, body, headers)
        retry_in = None if result.delivered else self.schedule.delay_before(claimed.attempt + 1)
        try:
            recorded = await self.repo.record_attempt(claimed, self.worker_id, started_at, result, retry_in)
        except StoreUnavailable:
            log.warning("webhook_attempt_not_recorded", delivery_id=claimed.id, attempt=claimed.attempt)
            return
        if recorded is None:
            log.warning("webhook_lease_lost", delivery_id=claimed.id, attempt=claimed.attempt)
            return
        log.info(
            "webhook_attempt",
            delivery_id=claimed.id,
            webhook_event=claimed.event,
            attempt=claimed.attempt,
            outcome=result.outcome,
            http_status=result.http_status,
            duration_ms=result.duration_ms,
            status=recorded.status,
        )
