"""``/v1/agent/batches`` (ext): many calls placed together.

- ``POST`` a JSON batch (``{"defaults": {...}, "calls": [...]}`` or with ``"csv"``), or a CSV
  file as ``text/csv``: each row is checked like ``POST /v1/agent/calls``; the good ones are
  queued in one transaction, the rest reported by row with their token (compliance/batches.py);
- ``GET /v1/agent/batches/{id}``: progress, the calls by status; ``GET /v1/agent/batches``: the newest;
- ``POST /v1/agent/batches/{id}/cancel``: its queued calls end ``canceled``; calls on the line finish.

The batch's calls are paced by the account's concurrent-call limit as workers claim them.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Request

from byourside_server.api.common import SafeJSONResponse, authenticate, services_of
from byourside_server.api.openapi import ERROR_RESPONSES
from byourside_server.api.requests import parse_body, validate_call_request
from byourside_server.api.routes.calls import parse_limit
from byourside_server.compliance.batch_events import batch_json
from byourside_server.compliance.batches import MAX_BATCH_BYTES, check_rows, rows_from_csv, rows_from_json, BatchRows
from byourside_server.errors import CallNotActive, InvalidRequest
from byourside_server.store.batches import BatchRepo

log = structlog.get_logger(__name__)

router = APIRouter(tags=["batches"], responses=ERROR_RESPONSES)


def _repo(request: Request) -> BatchRepo:
    repo = services_of(request).batches
    assert repo is not None
    return repo


async def _read_batch_body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BATCH_BYTES:
            raise InvalidRequest(f"A batch is at most {MAX_BATCH_BYTES // (1024 * 1024)} MiB; split it in several.")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/v1/agent/batches", status_code=201)
async def create_batch(request: Request) -> SafeJSONResponse:
    account, key = await authenticate(request)
    services = services_of(request)
    raw = await _read_batch_body(request)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() == "text/csv":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("The CSV must be UTF-8 text.") from None
        rows = BatchRows({}, rows_from_csv(text), None, {})
        if not rows.rows or len(rows.rows) > 10_000:
            raise InvalidRequest("A batch needs 1 to 10000 calls.")
    else:
        rows = rows_from_json(parse_body(raw, max_bytes=MAX_BATCH_BYTES))
    checked = await check_rows(services, account, key, rows, validate_call_request)
    batch = await _repo(request).create(account.id, checked.calls, rejected=len(checked.rejected),
                                        webhook_url=rows.webhook_url, metadata=rows.metadata)
    if checked.calls:
        services.signals.call_queued.set()
    log.info("batch_created", batch_id=batch.id, account_id=account.id, calls=batch.total,
             rejected=len(checked.rejected))
    return SafeJSONResponse({**batch_json(batch), "rejectedRows": checked.rejected}, status_code=201)


@router.get("/v1/agent/batches")
async def list_batches(request: Request, limit: str | None = None) -> dict[str, Any]:
    account, _ = await authenticate(request)
    batches = await _repo(request).list(account.id, limit=parse_limit(limit))
    return {"batches": [batch_json(b) for b in batches]}


@router.get("/v1/agent/batches/{batch_id}")
async def get_batch(batch_id: str, request: Request) -> dict[str, Any]:
    account, _ = await authenticate(request)
    return batch_json(await _repo(request).get(account.id, batch_id))


@router.post("/v1/agent/batches/{batch_id}/cancel")
async def cancel_batch(batch_id: str, request: Request) -> dict[str, Any]:
    account, _ = await authenticate(request)
    services = services_of(request)
    repo = _repo(request)
    if (await repo.get(account.id, batch_id)).finished_at is not None:
        raise CallNotActive("The batch has already finished.")
    for call_id in await repo.mark_canceled(account.id, batch_id):
        try:
            await services.calls.request_cancel(account.id, call_id)
        except CallNotActive:
            pass  # it ended meanwhile
    services.signals.cancel_requested.set()
    log.info("batch_canceled", batch_id=batch_id)
    return batch_json(await repo.get(account.id, batch_id))
