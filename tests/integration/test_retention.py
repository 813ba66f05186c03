"""Retention on a real store (SQLite and PostgreSQL): recordings and transcripts outlive their
account's retention days only until the purge runs; the outcome stays, accounts without
retention keep everything, and the webhook bodies kept for the call lose the words too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from recorded_calls import RecordingTelephony, call_worker, place_and_conduct
from sqlalchemy import select
from support import auth, new_account, open_services, running
from webhook_receiver import Receiver

from byourside_server.api.app import create_app
from byourside_server.clock import SystemClock
from byourside_server.compliance.retention import RetentionJob
from byourside_server.store import schema as t

BODY = {"to": "+12125550123", "objective": "Ask what time they open tomorrow.",
        "fields": [{"name": "opening_time", "type": "string"}]}


class MovableClock(SystemClock):
    """The system clock, moved forward on demand."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
async def world(database_url, tmp_path):
    clock = MovableClock()
    services = await open_services(database_url, tmp_path, clock=clock)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        yield services, api, clock
    await services.aclose()


async def read(api, secret, call_id):
    return (await api.get(f"/v1/agent/calls/{call_id}", headers=auth(secret))).json()


def unsigned(call):
    """The call without its recording link's signature, which is minted afresh (with a new expiry) on each read."""
    return {**call, "recordingUrl": (call["recordingUrl"] or "").split("?")[0] or None}


async def stored_payloads(services, call_id):
    async with services.db.read() as conn:
        return (await conn.execute(select(t.webhook_deliveries.c.payload)
                                   .where(t.webhook_deliveries.c.call_id == call_id))).scalars().all()


async def test_recordings_then_transcripts_are_purged_when_their_days_are_up(world, tmp_path):
    services, api, clock = world
    account, secret = await new_account(services)
    _, keeper_secret = await new_account(services, caller_id="+14155550101")
    await services.accounts.set_privacy(account.id, recording_retention_days=30, transcript_retention_days=60)
    with Receiver() as receiver:  # nobody delivers here: the bodies stay queued, as for a receiver that is down
        call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "a"),
                                       {**BODY, "webhookUrl": receiver.url()})
    kept = await place_and_conduct(services, api, keeper_secret, RecordingTelephony(tmp_path / "b"), BODY)
    stored = services.settings.data_dir / "recordings" / f"{call['id']}.wav"
    assert call["recordingUrl"] and call["transcript"] and stored.exists()
    assert any("We open at nine" in p for p in await stored_payloads(services, call["id"]))
    job = RetentionJob(services)

    assert (await job.purge_once()).recordings == 0  # nothing has expired yet
    assert unsigned(await read(api, secret, call["id"])) == unsigned(call)

    clock.offset = timedelta(days=31)
    report = await job.purge_once()
    assert (report.recordings, report.transcripts) == (1, 0)
    after_recording = await read(api, secret, call["id"])
    assert after_recording["recordingUrl"] is None and not stored.exists()
    assert after_recording["transcript"] == call["transcript"] and after_recording["summary"] == call["summary"]
    assert all(('"recordingUrl":null' in p) for p in await stored_payloads(services, call["id"]))

    clock.offset = timedelta(days=61)
    assert (await job.purge_once()).transcripts == 1
    purged = await read(api, secret, call["id"])
    assert purged["transcript"] is None and purged["turns"] is None and purged["summary"] is None
    assert purged["evidence"] is None
    for key in ("status", "endReason", "objectiveMet", "durationSeconds", "extracted", "answeredBy", "to"):
        assert purged[key] == call[key], key
    assert not any("We open at nine" in p for p in await stored_payloads(services, call["id"]))
    assert (await job.purge_once()) == type(report)(0, 0)  # each call is purged once

    # the account without retention keeps everything
    assert unsigned(await read(api, keeper_secret, kept["id"])) == unsigned(kept)


async def test_the_servers_default_applies_to_accounts_that_set_none(database_url, tmp_path):
    clock = MovableClock()
    services = await open_services(database_url, tmp_path, clock=clock, transcript_retention_days=7)
    try:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            _, secret = await new_account(services)
            forever, forever_secret = await new_account(services, caller_id="+14155550101")
            await services.accounts.set_privacy(forever.id, transcript_retention_days=0)  # 0: keep forever
            call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "a"), BODY)
            kept = await place_and_conduct(services, api, forever_secret, RecordingTelephony(tmp_path / "b"), BODY)
            clock.offset = timedelta(days=8)
            assert (await RetentionJob(services).purge_once()).transcripts == 1
            assert (await read(api, secret, call["id"]))["transcript"] is None
            assert unsigned(await read(api, secret, call["id"]))["recordingUrl"] == unsigned(call)["recordingUrl"]
            assert (await read(api, forever_secret, kept["id"]))["transcript"] == kept["transcript"]
    finally:
        await services.aclose()


async def test_a_running_worker_purges_on_its_own(world, tmp_path):
    services, api, clock = world
    account, secret = await new_account(services)
    await services.accounts.set_privacy(account.id, transcript_retention_days=1)
    call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "a"), BODY)
    clock.offset = timedelta(days=2)
    async with running(call_worker(services, RecordingTelephony(tmp_path / "b"))):
        for _ in range(1200):  # a safety net for a slow machine, not a speed requirement
            if (await read(api, secret, call["id"]))["transcript"] is None:
                break
            await asyncio.sleep(0.05)
    assert (await read(api, secret, call["id"]))["transcript"] is None
