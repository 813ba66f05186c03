"""A batch's JSON shape, and its ``batch.finished`` webhook event.

When the last active call of a batch ends, ``after_transition`` (a transition hook, in that
call's own transaction) finishes the batch and, if it has a ``webhookUrl``, queues the event
in the webhook outbox beside the call's own events: delivered, signed and retried like them,
and listed with the deliveries of the call that finished the batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from byourside_server.domain import CallStatus
from byourside_server.store import schema as t
from byourside_server.store.batches import BatchRecord, finished_in
from byourside_server.store.notify import notify
from byourside_server.store.records import CallRecord
from byourside_server.webhooks.events import PENDING, WEBHOOK_DUE, build_payload, new_event_id
from byourside_server.wire import iso

BATCH_FINISHED = "batch.finished"


def batch_json(batch: BatchRecord) -> dict[str, Any]:
    return {
        "batchId": batch.id,
        "status": batch.status,
        "total": batch.total,
        "rejected": batch.rejected,
        "counts": {s.value: batch.counts.get(s.value, 0) for s in CallStatus},
        "webhookUrl": batch.webhook_url,
        "metadata": dict(batch.metadata),
        "createdAt": iso(batch.created_at),
        "canceledAt": iso(batch.canceled_at),
        "finishedAt": iso(batch.finished_at),
    }


async def after_transition(conn: AsyncConnection, call: CallRecord, status: CallStatus, now: datetime) -> None:
    if not status.terminal or call.batch_id is None:
        return
    batch = await finished_in(conn, call.batch_id, now)
    if batch is None or not batch.webhook_url:
        return
    event_id = new_event_id()
    await conn.execute(insert(t.webhook_deliveries).values(
        id=event_id, account_id=batch.account_id, call_id=call.id, event=BATCH_FINISHED, url=batch.webhook_url,
        payload=build_payload(BATCH_FINISHED, event_id, now, batch_json(batch)), status=PENDING, attempt_count=0,
        next_attempt_at=now, created_at=now))
    await notify(conn, WEBHOOK_DUE)
