"""Webhook rows: claiming due deliveries with leases, recording attempts, listing, secrets.

Claiming works like call claiming: PostgreSQL picks due rows ``FOR UPDATE SKIP
LOCKED`` so many delivery loops share the table without waiting on each other;
SQLite serialises writers with ``BEGIN IMMEDIATE``. A claim leases the row and
fixes the attempt number; recording the attempt is conditional on still holding
that lease at that attempt number, and ``(delivery_id, attempt)`` is a primary
key, so one attempt can never be recorded twice. A loop that dies mid-attempt
leaves its lease to expire, and the attempt is made again (at-least-once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update

from byourside_server.wire import iso
from byourside_server.clock import Clock
from byourside_server.errors import NotFound
from byourside_server.guardrails.text import possible_id
from byourside_server.store import schema as t
from byourside_server.store.accounts import new_webhook_secret
from byourside_server.store.database import Database
from byourside_server.store.notify import notify
from byourside_server.webhooks.events import DELIVERED, FAILED, GONE, PENDING, WEBHOOK_DUE
from byourside_server.webhooks.sender import GONE as GONE_OUTCOME
from byourside_server.webhooks.sender import AttemptResult
from byourside_server.webhooks.signing import signing_secrets


@dataclass(frozen=True)
class Claimed:
    """A delivery leased for one attempt, with what signing it needs."""

    id: str
    event: str
    url: str
    payload: str
    attempt: int  # the number of the attempt about to be made (1-based)
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Recorded:
    status: str
    next_attempt_at: datetime | None


class WebhookRepo:
    def __init__(self, db: Database, clock: Clock, *, secret_grace_seconds: float = 86_400) -> None:
        self.db = db
        self.clock = clock
        self.secret_grace_seconds = secret_grace_seconds

    async def claim_due(self, worker_id: str, lease_seconds: float, limit: int) -> list[Claimed]:
        now = self.clock.now()
        d = t.webhook_deliveries.c
        a = t.accounts.c
        pick = (
            select(d.id)
            .where(
                and_(
                    d.status == PENDING,
                    d.next_attempt_at <= now,
                    or_(d.lease_expires_at.is_(None), d.lease_expires_at < now),
                )
            )
            .order_by(d.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.db.write() as conn:
            ids = (await conn.execute(pick)).scalars().all()
            if not ids:
                return []
            await conn.execute(
                update(t.webhook_deliveries)
                .where(d.id.in_(ids))
                .values(lease_owner=worker_id, lease_expires_at=now + timedelta(seconds=lease_seconds))
            )
            rows = (
                await conn.execute(
                    select(
                        d.id, d.event, d.url, d.payload, d.attempt_count,
                        a.webhook_secret, a.previous_webhook_secret, a.webhook_secret_rotated_at,
                    )
                    .join(t.accounts, a.id == d.account_id)
                    .where(d.id.in_(ids))
                    .order_by(d.next_attempt_at)
                )
            ).all()
        return [
            Claimed(
                id=r.id,
                event=r.event,
                url=r.url,
                payload=r.payload,
                attempt=r.attempt_count + 1,
                secrets=tuple(
                    signing_secrets(
                        r.webhook_secret, r.previous_webhook_secret, r.webhook_secret_rotated_at, now,
                        self.secret_grace_seconds,
                    )
                ),
            )
            for r in rows
        ]

    async def record_attempt(
        self,
        claimed: Claimed,
        worker_id: str,
        started_at: datetime,
        result: AttemptResult,
        retry_in_seconds: float | None,
    ) -> Recorded | None:
        """Store the attempt and the delivery's next state; None if the lease was lost meanwhile.

        ``retry_in_seconds`` is None when no attempt is left in the schedule.
        """
        now = self.clock.now()
        d = t.webhook_deliveries.c
        if result.delivered:
            status, next_at = DELIVERED, None
        elif result.outcome == GONE_OUTCOME:
            status, next_at = GONE, None
        elif retry_in_seconds is None:
            status, next_at = FAILED, None
        else:
            status, next_at = PENDING, now + timedelta(seconds=retry_in_seconds)
        async with self.db.write() as conn:
            updated = (
                await conn.execute(
                    update(t.webhook_deliveries)
                    .where(
                        and_(
                            d.id == claimed.id,
                            d.lease_owner == worker_id,
                            d.attempt_count == claimed.attempt - 1,
                            d.status == PENDING,
                        )
                    )
                    .values(
                        status=status,
                        attempt_count=claimed.attempt,
                        next_attempt_at=next_at,
                        lease_owner=None,
                        lease_expires_at=None,
                        finished_at=None if status == PENDING else now,
                    )
                    .returning(d.id)
                )
            ).first()
            if updated is None:
                return None
            await conn.execute(
                insert(t.webhook_attempts).values(
                    delivery_id=claimed.id,
                    attempt=claimed.attempt,
                    worker_id=worker_id,
                    started_at=started_at,
                    outcome=result.outcome,
                    http_status=result.http_status,
                    error=result.error,
                    duration_ms=result.duration_ms,
                )
            )
        return Recorded(status, next_at)

    async def release(self, delivery_ids: list[str], worker_id: str) -> None:
        """Give back leases of attempts not made (on shutdown), so others need not wait for expiry."""
        if not delivery_ids:
            return
        d = t.webhook_deliveries.c
        async with self.db.write() as conn:
            await conn.execute(
                update(t.webhook_deliveries)
                .where(and_(d.id.in_(delivery_ids), d.lease_owner == worker_id))
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def next_due_at(self) -> datetime | None:
        """When the next unleased pending delivery is due (leased ones are someone else's for now)."""
        d = t.webhook_deliveries.c
        now = self.clock.now()
        unleased = or_(d.lease_expires_at.is_(None), d.lease_expires_at < now)
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(d.next_attempt_at)
                    .where(and_(d.status == PENDING, unleased))
                    .order_by(d.next_attempt_at)
                    .limit(1)
                )
            ).scalar_one_or_none()

    async def list_for_call(self, account_id: str, call_id: str) -> list[dict[str, Any]]:
        """Every event of the call with its attempts (404 for another account's call)."""
        if not possible_id(call_id):
            raise NotFound()
        d = t.webhook_deliveries.c
        w = t.webhook_attempts.c
        async with self.db.read() as conn:
            owner = (await conn.execute(select(t.calls.c.account_id).where(t.calls.c.id == call_id))).scalar_one_or_none()
            if owner is None or owner != account_id:
                raise NotFound()
            deliveries = (
                await conn.execute(
                    select(t.webhook_deliveries).where(d.call_id == call_id).order_by(d.created_at, d.id)
                )
            ).mappings().all()
            attempts = (
                await conn.execute(
                    select(t.webhook_attempts)
                    .where(w.delivery_id.in_([r["id"] for r in deliveries]))
                    .order_by(w.delivery_id, w.attempt)
                )
            ).mappings().all() if deliveries else []
        by_delivery: dict[str, list[dict[str, Any]]] = {}
        for a in attempts:
            by_delivery.setdefault(a["delivery_id"], []).append(_attempt_json(a))
        return [_delivery_json(r, by_delivery.get(r["id"], [])) for r in deliveries]

    async def deliver_again(self, account_id: str, delivery_id: str) -> bool:
        """Queue one more attempt of a finished delivery (delivered, failed or gone) of this account,
        due now; the delivery loop makes it and records it like any other. False when there is no
        such delivery, or it is still pending (its next attempt is already scheduled)."""
        if not possible_id(delivery_id):
            return False
        d = t.webhook_deliveries.c
        async with self.db.write() as conn:
            updated = (
                await conn.execute(
                    update(t.webhook_deliveries)
                    .where(and_(d.id == delivery_id, d.account_id == account_id, d.status != PENDING))
                    .values(status=PENDING, next_attempt_at=self.clock.now(), finished_at=None,
                            lease_owner=None, lease_expires_at=None)
                    .returning(d.id)
                )
            ).first()
            if updated is not None:
                await notify(conn, WEBHOOK_DUE)
        return updated is not None

    # Signing secrets

    async def secrets(self, account_id: str) -> list[str]:
        """The secrets webhooks of this account are signed with right now (current first)."""
        a = t.accounts.c
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(a.webhook_secret, a.previous_webhook_secret, a.webhook_secret_rotated_at).where(a.id == account_id)
                )
            ).one()
        return signing_secrets(row[0], row[1], row[2], self.clock.now(), self.secret_grace_seconds)

    async def rotate_secret(self, account_id: str) -> str:
        """Make a new current secret; the old one keeps signing for the grace period."""
        secret = new_webhook_secret()
        a = t.accounts.c
        async with self.db.write() as conn:
            current = (await conn.execute(select(a.webhook_secret).where(a.id == account_id))).scalar_one()
            await conn.execute(
                update(t.accounts)
                .where(a.id == account_id)
                .values(webhook_secret=secret, previous_webhook_secret=current, webhook_secret_rotated_at=self.clock.now())
            )
        return secret


def _attempt_json(a: Any) -> dict[str, Any]:
    return {
        "attempt": a["attempt"],
        "at": iso(a["started_at"]),
        "outcome": a["outcome"],
        "httpStatus": a["http_status"],
        "error": a["error"],
        "durationMs": a["duration_ms"],
    }


def _delivery_json(r: Any, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "eventId": r["id"],
        "event": r["event"],
        "url": r["url"],
        "status": r["status"],
        "createdAt": iso(r["created_at"]),
        "nextAttemptAt": iso(r["next_attempt_at"]),
        "finishedAt": iso(r["finished_at"]),
        "attempts": attempts,
    }
