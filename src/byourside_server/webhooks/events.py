"""Webhook events: which status changes produce one, and the body they carry.

``enqueue_for_transition`` is the store's transition hook (services.py hands it
to ``CallRepo``): it runs inside the transaction that changes a call's status,
so the event and the change commit or roll back together. The body is a
snapshot built from the call record the UPDATE returned: the outcome written by
``finish()`` is in it, and later changes to the call never alter an event
already queued.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from byourside_server.wire import call_to_json, iso, json_text
from byourside_server.domain import CallStatus
from byourside_server.store import schema as t
from byourside_server.store.notify import notify
from byourside_server.store.records import CallRecord

WEBHOOK_DUE = "bys_webhook_due"
PENDING, DELIVERED, FAILED, GONE = "pending", "delivered", "failed", "gone"
PING = "ping"
# Bodies stay at or below this many bytes: beyond it the bulky per-turn keys are sent as
# null, then the transcript is cut (only calls of hours get near it).
MAX_BODY_BYTES = 1_000_000
_DROPPABLE = ("turns", "latency", "evidence")
TRUNCATED_MARK = "\n[transcript truncated; GET the call for the full text]"


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def event_name(status: CallStatus) -> str | None:
    """The webhook event for a new status, or None when that status sends none."""
    if status is CallStatus.IN_PROGRESS or status.terminal:
        return f"call.{status.value}"
    return None


def build_payload(event: str, event_id: str, when: datetime, call: Mapping[str, Any] | None = None) -> str:
    """The flat JSON body: ``event``, ``eventId``, ``timestamp`` and the call object's keys.

    ``recordingUrl`` is stored as a path; ``absolute_body`` prefixes the public
    base URL when sending, so the snapshot does not depend on server settings.
    """
    body: dict[str, Any] = dict(call or {})
    body.update({"event": event, "eventId": event_id, "timestamp": iso(when)})
    return json_text(body)  # never fails on what a row holds, so the status change it rides with cannot


def _capped_payload(event: str, event_id: str, when: datetime, call: dict[str, Any]) -> str:
    """The payload, kept to MAX_BODY_BYTES: first the per-turn copies of the words go
    (``turns``...), then the end of ``transcript`` (GET the call for all of it)."""
    payload = build_payload(event, event_id, when, call)
    if len(payload.encode()) <= MAX_BODY_BYTES:
        return payload
    call.update({key: None for key in _DROPPABLE})
    payload = build_payload(event, event_id, when, call)
    while (excess := len(payload.encode()) - MAX_BODY_BYTES) > 0 and call.get("transcript"):
        keep = max(0, len(call["transcript"]) - excess - 1000)
        call["transcript"] = call["transcript"][:keep] + TRUNCATED_MARK
        payload = build_payload(event, event_id, when, call)
    return payload


def absolute_body(payload: str, base_url: str) -> bytes:
    """The bytes to send: the snapshot with a relative ``recordingUrl`` made absolute."""
    body = json.loads(payload)
    recording = body.get("recordingUrl")
    if isinstance(recording, str) and recording.startswith("/"):
        body["recordingUrl"] = base_url.rstrip("/") + recording
        return json_text(body).encode()
    return payload.encode()


async def enqueue_for_transition(
    conn: AsyncConnection, call: CallRecord, status: CallStatus, now: datetime
) -> str | None:
    """Queue the event for this status change when the call has a webhook URL; return its eventId."""
    event = event_name(status)
    if event is None or not call.webhook_url:
        return None
    event_id = new_event_id()
    payload = _capped_payload(event, event_id, now, call_to_json(call, base_url=""))
    await conn.execute(
        insert(t.webhook_deliveries).values(
            id=event_id,
            account_id=call.account_id,
            call_id=call.id,
            event=event,
            url=call.webhook_url,
            payload=payload,
            status=PENDING,
            attempt_count=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    await notify(conn, WEBHOOK_DUE)
    return event_id
