"""Batches (``POST /v1/agent/batches``, ext): reading the rows and checking each one.

A batch is ``{"defaults": {call request keys}, "calls": [{per-row keys}], "webhookUrl"?, "metadata"?}``,
or the same with ``"csv": "<CSV text>"`` in place of ``calls``, or a CSV file posted as
``text/csv``. A CSV's header names the keys (``to``, ``objective``, ``context``, ``scheduledAt``,
``callerId``, ``voice``, ``language``, ``webhookUrl``, ``voicemailMessage``,
``maxDurationSeconds``, ``callingHours``, ``transferTo`` (several numbers separated by ``;``),
``transferMode``, and ``metadata.<key>`` for metadata). Each row is the defaults with its own
keys over them, checked exactly as ``POST /v1/agent/calls`` checks a request (the same
validation, guardrails for ``to`` and every ``transferTo`` number, caller ID, do-not-call list
and calling hours); a
row that fails is reported with its one token and left out. A body that cannot be read at
all creates nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from byourside_server.compliance.hours import CallingHours
from byourside_server.compliance.requests import check_schedule_horizon
from byourside_server.compliance.service import (
    HOLD_CALLING_HOURS,
    HOLD_SCHEDULED,
    NEVER_OPEN,
    opening,
)
from byourside_server.errors import (
    ApiError,
    CallerIdNotOwned,
    DestinationSuppressed,
    InvalidRequest,
    InvalidVoice,
    OutsideCallingHours,
)
from byourside_server.guardrails.numbers import Destination, check_destination
from byourside_server.guardrails.text import check_json_text
from byourside_server.guardrails.webhook_urls import check_webhook_url
from byourside_server.placement import (
    CallRequest,
    check_sendable_url,
    check_speakable,
    check_transfer_targets,
    resolve_language,
)
from byourside_server.services import Services
from byourside_server.store.call_types import NewCall
from byourside_server.store.records import Account, ApiKeyRecord
from byourside_server.voice_policy import is_known

MAX_ROWS = 10_000
MAX_BATCH_BYTES = 10 * 1024 * 1024
_CSV_KEYS = ("to", "objective", "context", "scheduledAt", "callerId", "voice", "language", "webhookUrl",
             "voicemailMessage", "maxDurationSeconds", "callingHours", "transferTo", "transferMode")
_INTEGER_KEYS = ("maxDurationSeconds",)


@dataclass(frozen=True)
class BatchRows:
    defaults: Mapping[str, Any]
    rows: Sequence[Mapping[str, Any]]
    webhook_url: str | None
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class CheckedBatch:
    calls: list[tuple[NewCall, datetime]]  # each accepted row, and when it may be dialled
    rejected: list[dict[str, Any]]  # {"row": n (1-based), "error": token, "message": ...}


def rows_from_json(body: Mapping[str, Any]) -> BatchRows:
    unknown = set(body) - {"defaults", "calls", "csv", "webhookUrl", "metadata"}
    if unknown:
        raise InvalidRequest("A batch takes 'defaults', 'calls' (or 'csv'), 'webhookUrl' and 'metadata'; not "
                             + ", ".join(sorted(repr(k) for k in unknown)) + ".")
    defaults = body.get("defaults", {})
    if not isinstance(defaults, dict):
        raise InvalidRequest("'defaults' must be an object of call request keys (objective, context, fields ...).")
    if ("calls" in body) == ("csv" in body):
        raise InvalidRequest("Send the rows either as 'calls' (a list of objects) or as 'csv' (CSV text), not both.")
    if "csv" in body:
        if not isinstance(body["csv"], str):
            raise InvalidRequest("'csv' must be the CSV text as one string.")
        rows = rows_from_csv(body["csv"])
    else:
        rows = body["calls"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InvalidRequest("'calls' must be a list of objects, one per call ({\"to\": ..., ...}).")
    if not rows or len(rows) > MAX_ROWS:
        raise InvalidRequest(f"A batch needs 1 to {MAX_ROWS} calls.")
    webhook_url = body.get("webhookUrl", "")
    if not isinstance(webhook_url, str):
        raise InvalidRequest("'webhookUrl' (where batch.finished is sent) must be a string.")
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict) or len(metadata) > 20 or not all(
            isinstance(k, str) and 0 < len(k) <= 40 and isinstance(v, str) and len(v) <= 500
            for k, v in metadata.items()):
        raise InvalidRequest("The batch's 'metadata' must be at most 20 string keys to string values.")
    return BatchRows(defaults, rows, webhook_url or None, metadata)


def rows_from_csv(text: str) -> list[dict[str, Any]]:
    """The CSV's rows as call request objects keyed by its header (see the module note)."""
    if "\x00" in text:
        raise InvalidRequest("The CSV must be text (it contains NUL characters).")
    try:
        lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    except csv.Error:
        raise InvalidRequest("The CSV could not be read: check its quotes.") from None
    if not lines:
        raise InvalidRequest("The CSV is empty: send a header (to, objective, ...) and one row per call.")
    header = [h.strip() for h in lines[0]]
    for name in header:
        if name not in _CSV_KEYS and not (name.startswith("metadata.") and len(name) > 9):
            raise InvalidRequest(f"Unknown CSV column '{name[:40]}': use " + ", ".join(_CSV_KEYS)
                                 + " or metadata.<key>.")
    if "to" not in header:
        raise InvalidRequest("The CSV needs a 'to' column.")
    rows = []
    for cells in lines[1:]:
        if not any(cell.strip() for cell in cells):
            continue
        row: dict[str, Any] = {}
        for name, cell in zip(header, cells):
            if cell == "":
                continue  # an empty cell leaves the default
            if name.startswith("metadata."):
                row.setdefault("metadata", {})[name[9:]] = cell
            elif name in _INTEGER_KEYS:
                row[name] = int(cell) if cell.strip().isdigit() else cell
            elif name == "transferTo" and ";" in cell:  # E.164 never contains ';'
                row[name] = [number.strip() for number in cell.split(";") if number.strip()]
            else:
                row[name] = cell
        rows.append(row)
    return rows


async def check_rows(services: Services, account: Account, key: ApiKeyRecord, batch: BatchRows,
                     validate: Callable[[Mapping[str, Any]], CallRequest]) -> CheckedBatch:
    """Each row checked as a placement would check it (``validate``: the edge's request validator,
    api/requests.py); the accepted ones and the report of the rest."""
    check_json_text(batch.defaults)
    settings = services.settings
    if batch.webhook_url:  # where batch.finished goes: the same rules as a call's webhookUrl
        check_sendable_url(batch.webhook_url)
        await check_webhook_url(batch.webhook_url, allow_http=settings.webhook_allow_http,
                                allow_private=settings.webhook_allow_private)
    compliance = services.compliance
    assert compliance is not None and services.suppressions is not None
    hours = await compliance.hours_for(account.id)
    now = services.clock.now()
    checked_urls: dict[str, ApiError | None] = {}
    owned: dict[str, bool] = {}
    destinations: dict[str, Destination | ApiError] = {}
    suppressed = await _suppressed(services, account.id, batch)
    calls: list[tuple[NewCall, datetime]] = []
    rejected: list[dict[str, Any]] = []
    for index, row in enumerate(batch.rows, start=1):
        try:
            merged = {**batch.defaults, **row}
            if "metadata" in batch.defaults and "metadata" in row and isinstance(row["metadata"], dict):
                merged["metadata"] = {**batch.defaults["metadata"], **row["metadata"]}
            request = validate(merged)
            calls.append(await _check_one(services, account, key, request, hours, now, checked_urls, owned,
                                          suppressed, destinations))
        except ApiError as exc:
            rejected.append({"row": index, "error": exc.token, "message": exc.message})
    return CheckedBatch(calls, rejected)


async def _suppressed(services: Services, account_id: str, batch: BatchRows) -> set[str]:
    numbers = {r.get("to") for r in batch.rows if isinstance(r.get("to"), str)}
    if isinstance(batch.defaults.get("to"), str):
        numbers.add(batch.defaults["to"])
    return await services.suppressions.among(account_id, numbers)  # type: ignore[union-attr]


async def _check_one(services: Services, account: Account, key: ApiKeyRecord, request: CallRequest,
                     hours: CallingHours, now: datetime, checked_urls: dict[str, ApiError | None],
                     owned: dict[str, bool], suppressed: set[str],
                     destinations: dict[str, Destination | ApiError]) -> tuple[NewCall, datetime]:
    settings = services.settings
    if request.to not in destinations:  # each distinct number is classified once per batch
        try:
            destinations[request.to] = check_destination(request.to, services.destination_policy)
        except ApiError as exc:
            destinations[request.to] = exc
    destination = destinations[request.to]
    if isinstance(destination, ApiError):
        raise destination
    transfer_to = check_transfer_targets(request.transfer_to, destination.e164, services.destination_policy)
    if request.webhook_url:
        if request.webhook_url not in checked_urls:  # each distinct URL is checked (and resolved) once
            try:
                check_sendable_url(request.webhook_url)
                await check_webhook_url(request.webhook_url, allow_http=settings.webhook_allow_http,
                                        allow_private=settings.webhook_allow_private)
                checked_urls[request.webhook_url] = None
            except ApiError as exc:
                checked_urls[request.webhook_url] = exc
        if (problem := checked_urls[request.webhook_url]) is not None:
            raise problem
    if request.voice and not is_known(request.voice, settings):
        raise InvalidVoice()
    caller_id = request.caller_id or account.default_caller_id
    if caller_id is not None and caller_id not in owned:
        owned[caller_id] = await services.accounts.owns_number(account.id, caller_id)
    if caller_id is None or not owned[caller_id]:
        raise CallerIdNotOwned()
    check_schedule_horizon(request.scheduled_at, now)
    if destination.e164 in suppressed:
        raise DestinationSuppressed()
    due = max(request.scheduled_at, now) if request.scheduled_at is not None else now
    opens = due if destination.simulator else opening(hours, destination.e164, due)  # (simulator: see opening)
    if opens is None:
        raise OutsideCallingHours(NEVER_OPEN)
    if opens > due and request.calling_hours == "strict":
        raise OutsideCallingHours()
    reason = HOLD_CALLING_HOURS if opens > due else HOLD_SCHEDULED if due > now else None
    language, language_source = resolve_language(request.language, request.objective, destination.region,
                                                 settings.default_language)
    check_speakable(language, language_source, settings)
    new = NewCall(
        to_number=destination.e164, from_number=caller_id, objective=request.objective, context=request.context,
        fields=request.fields, webhook_url=request.webhook_url,
        voice=request.voice or key.voice or settings.default_voice, language=language,
        language_source=language_source,
        max_duration_seconds=request.max_duration_seconds or settings.max_duration_seconds,
        metadata=request.metadata, voicemail_message=request.voicemail_message, scheduled_at=request.scheduled_at,
        not_before=opens, hold_reason=reason,
        retry=request.retry.to_json() if request.retry is not None else None,
        transfer={"to": list(transfer_to), "mode": request.transfer_mode} if transfer_to else None,
    )
    return new, opens
