"""``/v1/agent/suppressions`` (ext): the account's do-not-call list.

- ``GET`` lists it (by number, paged with ``cursor``/``nextCursor``);
- ``POST`` ``{"numbers": [...], "note"?}`` adds numbers (all or nothing: one bad number is
  ``invalid_number`` naming its index); ``POST`` a CSV file (``Content-Type: text/csv``): one
  number a row, in the column headed number/phone/to/e164 or else the first; good rows are
  added, bad ones reported by row;
- ``GET`` / ``DELETE /v1/agent/suppressions/{number}`` read or remove one entry.

A number on the list is refused at placement (``403 destination_suppressed``) and ended
before dialling if it joined the list while its call waited.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Request

from byourside_server.api.common import authenticate, read_body, services_of
from byourside_server.api.openapi import ERROR_RESPONSES
from byourside_server.api.requests import parse_body
from byourside_server.api.routes.calls import parse_limit
from byourside_server.compliance.numbers_csv import read_numbers_csv
from byourside_server.errors import InvalidNumber, InvalidRequest, NotFound
from byourside_server.guardrails.numbers import parse_e164
from byourside_server.store.suppressions import Suppression, SuppressionRepo
from byourside_server.wire import iso

log = structlog.get_logger(__name__)

router = APIRouter(tags=["suppressions"], responses=ERROR_RESPONSES)

MAX_NUMBERS_PER_REQUEST = 1_000
MAX_NOTE = 200


def _repo(request: Request) -> SuppressionRepo:
    repo = services_of(request).suppressions
    assert repo is not None
    return repo


def suppression_json(entry: Suppression) -> dict[str, Any]:
    return {"number": entry.number, "source": entry.source, "callId": entry.call_id, "note": entry.note,
            "createdAt": iso(entry.created_at)}


def _number(raw: str) -> str:
    try:
        return parse_e164(raw)
    except InvalidNumber:
        raise NotFound("This number is not on the account's do-not-call list (numbers are E.164, '+' URL-encoded "
                       "as %2B).") from None


@router.get("/v1/agent/suppressions")
async def list_suppressions(request: Request, limit: str | None = None, cursor: str | None = None) -> dict[str, Any]:
    account, _ = await authenticate(request)
    items, next_cursor = await _repo(request).list(account.id, limit=parse_limit(limit), cursor=cursor or None)
    return {"suppressions": [suppression_json(i) for i in items], "nextCursor": next_cursor}


@router.post("/v1/agent/suppressions")
async def add_suppressions(request: Request) -> dict[str, Any]:
    """JSON ``{"numbers": [...]}`` (all or nothing), or a CSV file as ``text/csv`` (bad rows reported)."""
    account, _ = await authenticate(request)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() == "text/csv":
        return await _import_csv(request, account.id)
    body = parse_body(await read_body(request))
    numbers = body.get("numbers")
    if numbers is None and "number" in body:
        numbers = [body["number"]]
    if not isinstance(numbers, list) or not numbers or len(numbers) > MAX_NUMBERS_PER_REQUEST:
        raise InvalidRequest(f"Send {{\"numbers\": [\"+14155550123\", ...]}} with 1 to {MAX_NUMBERS_PER_REQUEST} "
                             "E.164 numbers (or {\"number\": ...}), or a CSV file with Content-Type: text/csv.")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise InvalidRequest(f"'note' must be a string of at most {MAX_NOTE} characters.")
    parsed = []
    for index, raw in enumerate(numbers):
        try:
            parsed.append(parse_e164(raw))
        except InvalidNumber as exc:
            raise InvalidNumber(f"numbers[{index}]: {exc.message}") from None
    added = await _repo(request).add(account.id, parsed, source="api", note=note or None)
    log.info("suppressions_added", account_id=account.id, added=added)
    return {"added": added, "alreadyListed": len(set(parsed)) - added}


async def _import_csv(request: Request, account_id: str) -> dict[str, Any]:
    """A CSV file of numbers: good rows are added, bad rows listed with their row number and token."""
    numbers, rejected = read_numbers_csv(await read_body(request))
    added = await _repo(request).add(account_id, numbers, source="csv") if numbers else 0
    log.info("suppressions_imported", account_id=account_id, added=added, rejected=len(rejected))
    return {"added": added, "alreadyListed": len(set(numbers)) - added, "rejected": rejected}


@router.get("/v1/agent/suppressions/{number}")
async def get_suppression(number: str, request: Request) -> dict[str, Any]:
    account, _ = await authenticate(request)
    entry = await _repo(request).get(account.id, _number(number))
    if entry is None:
        raise NotFound("This number is not on the account's do-not-call list.")
    return suppression_json(entry)


@router.delete("/v1/agent/suppressions/{number}")
async def remove_suppression(number: str, request: Request) -> dict[str, Any]:
    account, _ = await authenticate(request)
    if not await _repo(request).remove(account.id, _number(number)):
        raise NotFound("This number is not on the account's do-not-call list.")
    log.info("suppression_removed", account_id=account.id)
    return {"removed": True}
