"""Retention and erasure of a call's personal data.

Retention: an account keeps recordings and transcripts for a number of days after a call
ends (``recording_retention_days``, ``transcript_retention_days``; default
``BYS_RECORDING_RETENTION_DAYS`` / ``BYS_TRANSCRIPT_RETENTION_DAYS``, 0 = forever). Each
worker runs ``RetentionJob`` every ``BYS_RETENTION_PURGE_SECONDS``: an expired recording is
deleted from the recording store and the call loses its ``recordingUrl``; an expired
transcript goes with the summary and the evidence quotes that retell it. The outcome stays:
status, endReason, objectiveMet, extracted values, durationSeconds, answeredBy.

Erasure (``DELETE /v1/agent/calls/{id}``, ext): an ended call loses every piece of personal
data: transcript, turns, summary, recording (the stored object too), extracted values (the
keys stay, the values become null), evidence, objective, context, voicemail message, and its
numbers are masked (``+1555***0123``). ``metadata`` (the client's own references) stays. It is
idempotent: a second DELETE answers the same body. A call still active answers 409
``call_active``.

Both rewrite the webhook bodies of the call's events, queued, retrying or sent, in the same
transaction: a delivery attempted afterwards carries the purged or erased shape.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from byourside_server.domain import ACTIVE_STATUSES
from byourside_server.errors import CallActive, NotFound, StoreUnavailable
from byourside_server.recordings import RecordingStoreUnavailable
from byourside_server.services import Services
from byourside_server.store.records import Account, CallRecord, call_from_row
from byourside_server.store.retention import (
    clear_recording_in,
    erase_call_in,
    expired_recordings,
    mask_number,
    purge_transcripts_in,
    rewrite_payloads_in,
)
from byourside_server.wire import iso, json_text

log = structlog.get_logger(__name__)

# Rows handled per transaction by a purge round.
PURGE_BATCH = 200


# -- the call object's shape after a purge or an erasure (the API's and the webhook bodies') --

def _purged_transcript(body: dict[str, Any]) -> None:
    for key in ("transcript", "turns", "summary", "evidence"):
        if key in body:
            body[key] = None


def _purged_recording(body: dict[str, Any]) -> None:
    if "recordingUrl" in body:
        body["recordingUrl"] = None


def erased_body(body: dict[str, Any], erased_at: str | None) -> None:
    """A call object (or a call event's flat body) as erasure leaves it."""
    _purged_transcript(body)
    _purged_recording(body)
    for key in ("to", "from"):
        if isinstance(body.get(key), str):
            body[key] = mask_number(body[key])
    if isinstance(body.get("extracted"), dict):
        body["extracted"] = {name: None for name in body["extracted"]}
    if isinstance(body.get("transferTo"), list):
        body["transferTo"] = [mask_number(str(n)) for n in body["transferTo"]]
    body.update({"objective": "", "context": None, "voicemailMessage": None, "answeredByEvidence": None,
                 "erasedAt": erased_at})


def _rewriter(change: Callable[[dict[str, Any]], None]) -> Callable[[str], str]:
    def rewrite(payload: str) -> str:
        try:
            body = json.loads(payload)
        except ValueError:
            return payload
        if not isinstance(body, dict):
            return payload
        change(body)
        return json_text(body)
    return rewrite


# -- erasure -------------------------------------------------------------------

async def erase_call(services: Services, account_id: str, call_id: str) -> CallRecord:
    """Erase an ended call of ``account_id`` (``NotFound`` for anyone else's, ``CallActive`` while it runs).

    The recording object goes first: should the recording store be down, nothing is erased and
    the client retries (503 ``store_error``), rather than a row pointing at nothing while the
    audio survives."""
    call = await services.calls.get(account_id, call_id)
    if call.status in ACTIVE_STATUSES:
        raise CallActive()
    if call.erased_at is not None:
        return call
    if call.recording_path and services.recordings is not None:
        await services.recordings.delete(call.recording_path)
    now = services.clock.now()
    async with services.db.write() as conn:
        row = await erase_call_in(conn, call.id, now)
        if row is None:  # cannot happen: an ended call stays ended
            raise NotFound()
        erased = call_from_row(row)
        await rewrite_payloads_in(conn, [call.id], _rewriter(lambda body: erased_body(body, iso(erased.erased_at))))
    log.info("call_erased", call_id=call.id)
    return erased


# -- retention -----------------------------------------------------------------

@dataclass(frozen=True)
class PurgeReport:
    recordings: int = 0
    transcripts: int = 0


class RetentionJob:
    """Purges what has outlived each account's retention; every worker runs one (purges are conditional)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def _days(self, account: Account) -> tuple[int, int]:
        s = self.services.settings
        recordings = account.recording_retention_days
        transcripts = account.transcript_retention_days
        return (s.recording_retention_days if recordings is None else recordings,
                s.transcript_retention_days if transcripts is None else transcripts)

    async def purge_once(self) -> PurgeReport:
        recordings = transcripts = 0
        now = self.services.clock.now()
        for account in await self.services.accounts.list():
            recording_days, transcript_days = self._days(account)
            if recording_days > 0:
                recordings += await self._purge_recordings(account.id, now - timedelta(days=recording_days))
            if transcript_days > 0:
                transcripts += await self._purge_transcripts(account.id, now - timedelta(days=transcript_days))
        if recordings or transcripts:
            log.info("retention_purged", recordings=recordings, transcripts=transcripts)
        return PurgeReport(recordings, transcripts)

    async def _purge_recordings(self, account_id: str, cutoff: Any) -> int:
        db, store = self.services.db, self.services.recordings
        purged = 0
        failed: set[str] = set()
        while True:
            async with db.read() as conn:
                due = [(i, r) for i, r in await expired_recordings(conn, account_id, cutoff, PURGE_BATCH + len(failed))
                       if i not in failed]
            if not due:
                return purged
            for call_id, reference in due:
                try:
                    if store is not None:
                        await store.delete(reference)
                except (RecordingStoreUnavailable, OSError) as exc:  # kept, and tried again next round
                    log.warning("recording_purge_failed", call_id=call_id, error=type(exc).__name__)
                    failed.add(call_id)
                    continue
                async with db.write() as conn:
                    if await clear_recording_in(conn, call_id, reference):
                        await rewrite_payloads_in(conn, [call_id], _rewriter(_purged_recording))
                        purged += 1

    async def _purge_transcripts(self, account_id: str, cutoff: Any) -> int:
        purged = 0
        while True:
            async with self.services.db.write() as conn:
                ids = await purge_transcripts_in(conn, account_id, cutoff, PURGE_BATCH)
                await rewrite_payloads_in(conn, ids, _rewriter(_purged_transcript))
            purged += len(ids)
            if len(ids) < PURGE_BATCH:
                return purged

    async def run(self, stop: asyncio.Event) -> None:
        """Purge every ``BYS_RETENTION_PURGE_SECONDS`` until ``stop`` is set."""
        interval = self.services.settings.retention_purge_seconds
        while not stop.is_set():
            try:
                await self.purge_once()
            except StoreUnavailable:
                log.warning("retention_purge_store_unavailable")
            except Exception:
                log.exception("retention_purge_error")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass
