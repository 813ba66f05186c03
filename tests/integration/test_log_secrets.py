"""Logs never hold secrets: every site that logs an exception is provoked with secret-looking
values on the stack and in the failing rows, with ``rich`` importable, in console and JSON mode,
on SQLite and PostgreSQL; none of the values may appear in the output. JSON error lines must
still say what failed: the exception type and its frames.

The failures are real: database constraints (PostgreSQL CHECKs, whose DETAIL names the row's
values; SQLite triggers) reject poisoned rows at insert, at dialling, at reaping and at webhook
claim; the providers are fakes that raise where a real provider could.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Sequence

import httpx
import numpy as np
import pytest
import structlog
import uvicorn
from sqlalchemy import text, update

from byourside_server.agent.base import OBJECTIVE_MET, Analysis, Brain, ConversationEnd
from byourside_server.api.app import create_app
from byourside_server.domain import TERMINAL_STATUSES, CallTask, Turn
from byourside_server.logs import configure_logging, scrub
from byourside_server.mcp import tools as mcp_tools
from byourside_server.runtime.session import SessionDeps
from byourside_server.store import schema
from byourside_server.runtime.worker import Worker
from byourside_server.telephony.base import DialOutcome, DialRequest, Line, Speech
from byourside_server.telephony.sip.rtp import RtpSession
from byourside_server.telephony.simulator.over_sip import SipSimulator
from byourside_server.webhooks.delivery import DeliveryWorker
from fakes import FakeTelephony
from support import auth, new_account, open_services, running

import rich  # noqa: F401  (the failure mode under test: rich's traceback prints frame locals)

OBJECTIVE = "Ask whether vault code objective-5d1e7 still opens the back door"
CONTEXT = "context-secret-88a1f: the customer's date of birth is 1970-01-01"
TRANSCRIPT = "Sure, my card number is transcript-4c2b9 and the pin is 7764"
HOOK_TOKEN = "hooktoken-9f8e3c"
WEBHOOK_URL = f"http://127.0.0.1:9/receive?token={HOOK_TOKEN}"
NUMBER_INSERT = "+14155550141"
NUMBER_DIAL = "+14155550142"
NUMBER_BRAIN = "+14155550143"
NUMBER_ANALYSIS = "+14155550144"
NUMBER_SESSION = "+14155550145"
NUMBER_REAP = "+14155550146"
NUMBER_HEARTBEAT = "+14155550147"
NUMBERS = (NUMBER_INSERT, NUMBER_DIAL, NUMBER_BRAIN, NUMBER_ANALYSIS, NUMBER_SESSION, NUMBER_REAP, NUMBER_HEARTBEAT)

# Every site in src/ that logs an exception, by event name; the inventory test keeps this complete.
EXCEPTION_SITES = {
    "unhandled_error", "session_error", "upkeep_error", "dial_error", "brain_error", "analysis_error",
    "webhook_delivery_error", "mcp_tool_failed", "rtp_frame_listener_failed", "sip_sim_action_failed",
    "sip_sim_call_failed", "call_reap_failed", "stt_failed", "voice_frame_handler_failed", "voice_barge_in_stt_failed",
    "realtime_relay_failed", "retention_purge_error",
}
SRC = Path(__file__).resolve().parents[2] / "src" / "byourside_server"


def test_every_exception_logging_site_is_listed():
    found = set()
    for path in SRC.rglob("*.py"):
        source = path.read_text()
        found |= set(re.findall(r"log\.exception\(\s*\"([a-z_]+)\"", source))
        found |= set(re.findall(r"log\.\w+\(\s*\"([a-z_]+)\"[^\n]*exc_info", source))
        assert "logging.exception(" not in source and "traceback.print_exc" not in source, path
    assert found == EXCEPTION_SITES, "provoke the new site in this module: " + repr(found ^ EXCEPTION_SITES)


def test_scrub_hides_what_drivers_put_into_messages():
    text = scrub(
        "(sqlalchemy.dialects.postgresql.asyncpg.UniqueViolationError) duplicate key value\n"
        "DETAIL:  Key (idempotency_key)=(order-7781) already exists.\n"
        "[SQL: INSERT INTO calls (to_number, objective) VALUES ($1, $2)]\n"
        "[parameters: ('+14155550199', 'Ask for the pin')]\n"
        "invalid input for query argument $2: 'Ask for the pin' (expected str)\n"
        "1 validation error for X: input_value='+14155550199', input_type=str\n"
        "Authorization: Bearer bys_ak_abcDEF123_-x and whsec_Zz9-_q at 2026-12-01T00:00:00+00:00"
    )
    for secret in ("order-7781", "+14155550199", "Ask for the pin", "bys_ak_abc", "whsec_Zz9"):
        assert secret not in text, secret
    assert "[SQL: INSERT INTO calls (to_number, objective) VALUES ($1, $2)]" in text  # the statement stays
    assert "2026-12-01T00:00:00+00:00" in text  # timestamps are not numbers to hide


# Poisoned rows: each constraint rejects one step of one call, identified by a marker in its context.
_PG_POISON = {
    "bys_test_poison_insert": "context IS NULL OR context NOT LIKE '%poison-insert%'",
    "bys_test_poison_dial": "status = 'queued' OR context IS NULL OR context NOT LIKE '%poison-dial%'",
    "bys_test_poison_reap": "status <> 'failed' OR context IS NULL OR context NOT LIKE '%poison-reap%'",
}
# Added while the call is in conversation: any update of it (the heartbeat's lease renewal) fails.
_PG_HEARTBEAT_POISON = ("ALTER TABLE calls ADD CONSTRAINT bys_test_poison_heartbeat "
                        "CHECK (context IS NULL OR context NOT LIKE '%poison-heartbeat%') NOT VALID")
_SQLITE_HEARTBEAT_POISON = ("CREATE TRIGGER bys_test_poison_heartbeat BEFORE UPDATE ON calls "
                            "WHEN NEW.context LIKE '%poison-heartbeat%' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END")
_PG_WEBHOOK_POISON = "lease_owner IS NULL OR payload NOT LIKE '%poison-webhook%'"
_SQLITE_POISON = [
    "CREATE TRIGGER bys_test_poison_insert BEFORE INSERT ON calls WHEN NEW.context LIKE '%poison-insert%' "
    "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END",
    "CREATE TRIGGER bys_test_poison_dial BEFORE UPDATE ON calls WHEN NEW.status <> 'queued' "
    "AND NEW.context LIKE '%poison-dial%' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END",
    "CREATE TRIGGER bys_test_poison_reap BEFORE UPDATE ON calls WHEN NEW.status = 'failed' "
    "AND NEW.context LIKE '%poison-reap%' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END",
    "CREATE TRIGGER bys_test_poison_webhook BEFORE UPDATE ON webhook_deliveries WHEN NEW.lease_owner IS NOT NULL "
    "AND NEW.payload LIKE '%poison-webhook%' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END",
]


async def _poison(services) -> None:  # noqa: ANN001
    async with services.db.write() as conn:
        if services.db.is_sqlite:
            for statement in _SQLITE_POISON:
                await conn.execute(text(statement))
            return
        for name, check in _PG_POISON.items():
            await conn.execute(text(f"ALTER TABLE calls ADD CONSTRAINT {name} CHECK ({check})"))
        await conn.execute(text(
            f"ALTER TABLE webhook_deliveries ADD CONSTRAINT bys_test_poison_webhook CHECK ({_PG_WEBHOOK_POISON})"))


async def _cure(services) -> None:  # noqa: ANN001
    if services.db.is_sqlite:
        return  # the file is the test's own
    async with services.db.write() as conn:
        for name in (*_PG_POISON, "bys_test_poison_heartbeat"):
            await conn.execute(text(f"ALTER TABLE calls DROP CONSTRAINT IF EXISTS {name}"))
        await conn.execute(text("ALTER TABLE webhook_deliveries DROP CONSTRAINT IF EXISTS bys_test_poison_webhook"))


class FailingTelephony(FakeTelephony):
    """Answers with the callee saying TRANSCRIPT; the carrier fails on NUMBER_DIAL."""

    def __init__(self) -> None:
        super().__init__(replies=(TRANSCRIPT,))

    async def dial(self, request: DialRequest) -> DialOutcome:
        if request.to == NUMBER_DIAL:
            raise RuntimeError("the carrier refused the INVITE")
        return await super().dial(request)


class FailingBrain(Brain):
    """Hears the callee out, then fails in conversation or analysis as the call's context says."""

    name = "failing"

    def __init__(self) -> None:
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def converse(self, task: CallTask, line: Line) -> ConversationEnd:
        await line.say("Hello, this is an AI assistant.")
        heard = await line.listen(5)
        assert isinstance(heard, Speech)
        if "poison-heartbeat" in (task.context or ""):
            self.holding.set()
            await self.release.wait()
        if "explode-converse" in (task.context or ""):
            raise RuntimeError("the model returned an unparseable reply")
        await line.hangup()
        return ConversationEnd(OBJECTIVE_MET)

    async def analyze(self, task: CallTask, turns: Sequence[Turn], end: ConversationEnd) -> Analysis:
        if "explode-analysis" in (task.context or ""):
            raise RuntimeError("the analysis model timed out")
        return Analysis(summary="done", extracted={}, objective_met=True)


def _call_body(to: str, marker: str, **extra: object) -> dict:
    return {"to": to, "objective": OBJECTIVE, "context": f"{marker} {CONTEXT}", **extra}


async def _wait_until(predicate, what: str, timeout: float = 60.0) -> None:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _provoke_store_and_runtime_sites(services, log_text) -> list[str]:  # noqa: ANN001
    """unhandled_error, session_error, upkeep_error, dial_error, brain_error, analysis_error,
    webhook_delivery_error; returns the secrets in play (the account's key and webhook secret)."""
    account, key = await new_account(services)
    async with services.db.write() as conn:
        await conn.execute(text("UPDATE accounts SET max_concurrent_calls = 20 WHERE id = :id"), {"id": account.id})
    await _poison(services)
    try:
        transport = httpx.ASGITransport(app=create_app(services), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            refused = await api.post("/v1/agent/calls", headers=auth(key), json=_call_body(
                NUMBER_INSERT, "poison-insert", webhookUrl=WEBHOOK_URL, metadata={"note": CONTEXT}))
            assert refused.status_code == 500, refused.text
            ids = {}
            for name, to, marker, extra in (
                ("dial", NUMBER_DIAL, "plain", {}),
                ("brain", NUMBER_BRAIN, "explode-converse", {}),
                ("analysis", NUMBER_ANALYSIS, "explode-analysis",
                 {"webhookUrl": WEBHOOK_URL, "metadata": {"note": "poison-webhook"}}),
                ("session", NUMBER_SESSION, "poison-dial", {}),
                ("reap", NUMBER_REAP, "poison-reap", {}),
                ("heartbeat", NUMBER_HEARTBEAT, "poison-heartbeat", {}),
            ):
                placed = await api.post("/v1/agent/calls", headers=auth(key), json=_call_body(to, marker, **extra))
                assert placed.status_code == 201, placed.text
                ids[name] = placed.json()["callId"]
        # The reap call's worker vanished mid-dial: its lease has expired.
        past = services.clock.now() - timedelta(minutes=5)
        async with services.db.write() as conn:
            await conn.execute(update(schema.calls).where(schema.calls.c.id == ids["reap"]).values(
                status="dialing", lease_owner="gone", lease_expires_at=past, dial_started_at=past))

        brain = FailingBrain()
        deps = SessionDeps(calls=services.calls, telephony=FailingTelephony(), brain=brain, ring_timeout_seconds=5)

        async def ended(*names: str) -> bool:
            for name in names:
                if (await services.calls.get(account.id, ids[name])).status not in TERMINAL_STATUSES:
                    return False
            return True

        async with running(Worker(services, deps, concurrency=4), DeliveryWorker(services, worker_id="hooks")):
            await _wait_until(lambda: ended("dial", "brain", "analysis"), "the failing calls to end")
            for event in ("session_error", "call_reap_failed", "webhook_delivery_error"):
                await _wait_until(lambda: _async_true(event in log_text()), event)
            await asyncio.wait_for(brain.holding.wait(), 60)
            async with services.db.write() as conn:
                await conn.execute(text(_SQLITE_HEARTBEAT_POISON if services.db.is_sqlite else _PG_HEARTBEAT_POISON))
            await _wait_until(lambda: _async_true("upkeep_error" in log_text()), "upkeep_error")
            async with services.db.write() as conn:
                await conn.execute(text("DROP TRIGGER bys_test_poison_heartbeat" if services.db.is_sqlite
                                        else "ALTER TABLE calls DROP CONSTRAINT bys_test_poison_heartbeat"))
            brain.release.set()
            await _wait_until(lambda: ended("heartbeat"), "the held call to end")
    finally:
        await _cure(services)
    return [key, account.webhook_secret]


# The retention purge's update of an expired transcript is refused by the store.
_SQLITE_RETENTION_POISON = ("CREATE TRIGGER bys_test_poison_retention BEFORE UPDATE ON calls "
                            "WHEN NEW.context LIKE '%poison-retention%' AND NEW.turns IS NULL "
                            "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END")
_PG_RETENTION_POISON = ("ALTER TABLE calls ADD CONSTRAINT bys_test_poison_retention "
                        "CHECK (context IS NULL OR context NOT LIKE '%poison-retention%' OR turns IS NOT NULL) "
                        "NOT VALID")


async def _provoke_retention_site(services, log_text) -> None:  # noqa: ANN001
    """retention_purge_error: an ended call's transcript is past its account's retention, and the
    store refuses the purge's update; the job logs it and keeps running."""
    from byourside_server.compliance.retention import RetentionJob

    account, key = await new_account(services)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        placed = await api.post("/v1/agent/calls", headers=auth(key), json=_call_body(NUMBER_INSERT, "poison-retention"))
        assert placed.status_code == 201, placed.text
    long_ago = services.clock.now() - timedelta(days=30)
    async with services.db.write() as conn:
        await conn.execute(update(schema.calls).where(schema.calls.c.id == placed.json()["callId"]).values(
            status="completed", ended_at=long_ago, turns=[{"speaker": "contact", "text": TRANSCRIPT}]))
        await conn.execute(update(schema.accounts).where(schema.accounts.c.id == account.id).values(
            transcript_retention_days=1))
        await conn.execute(text(_SQLITE_RETENTION_POISON if services.db.is_sqlite else _PG_RETENTION_POISON))
    stop = asyncio.Event()
    job = asyncio.create_task(RetentionJob(services).run(stop))
    try:
        await _wait_until(lambda: _async_true("retention_purge_error" in log_text()), "retention_purge_error")
    finally:
        stop.set()
        await job
        async with services.db.write() as conn:
            await conn.execute(text("DROP TRIGGER bys_test_poison_retention" if services.db.is_sqlite
                                    else "ALTER TABLE calls DROP CONSTRAINT bys_test_poison_retention"))


async def _async_true(value: bool) -> bool:
    return value


async def _provoke_mcp_site(key: str) -> None:
    def place_call_through_sdk():
        api_key = key  # noqa: F841  (a local of the failing frame, as in the SDK client)
        destination, objective = NUMBER_DIAL, OBJECTIVE  # noqa: F841
        raise ValueError("the SDK returned something unexpected")

    _, error = await mcp_tools._run(None, place_call_through_sdk)
    assert error is not None and error.isError


def _provoke_rtp_site() -> None:
    transcript = TRANSCRIPT  # noqa: F841

    def listener(inbound: np.ndarray, outbound: np.ndarray) -> None:
        secret_line = transcript  # noqa: F841
        raise RuntimeError("the recorder's disk is full")

    RtpSession(on_frame=listener)._tick()


class _Voice:
    async def load(self):  # noqa: ANN201
        spoken = TRANSCRIPT  # noqa: F841
        raise RuntimeError("the voice models are missing")


class _Book:
    def for_number(self, number: str):  # noqa: ANN201
        raise LookupError("the scenario book is corrupt")


class _IncomingCall:
    call_id = "sip-call-2"
    number = NUMBER_DIAL

    def reject(self, code: int, reason: str) -> None:
        pass

    def close(self) -> None:
        pass


async def _provoke_simulator_site() -> None:
    await SipSimulator(_Book(), _Voice())._handle(_IncomingCall())


# Sites inside the voice pipeline and the SIP simulator's callee, whose objects need a live media
# session to build: their exceptions are logged here through the same module logger, event and
# bound values, from a frame holding what theirs would (heard text, numbers).
MEDIA_SITES = [
    ("byourside_server.telephony.simulator.over_sip", "sip_sim_action_failed", {"sip_call_id": "sip-call-1"}),
    ("byourside_server.voice.listening", "stt_failed", {}),
    ("byourside_server.voice.engine", "voice_frame_handler_failed", {"call_id": "call-1"}),
    ("byourside_server.voice.engine", "voice_barge_in_stt_failed", {"call_id": "call-1"}),
    ("byourside_server.voice.realtime_line", "realtime_relay_failed", {"call_id": "call-1"}),
]


def _log_media_sites() -> None:
    for module, event, ids in MEDIA_SITES:
        heard, dialled = TRANSCRIPT, NUMBER_DIAL  # noqa: F841
        try:
            raise RuntimeError("a media component failed")
        except RuntimeError:
            structlog.get_logger(module).exception(event, **ids)


async def _provoke_uvicorn(key: str) -> None:
    """uvicorn's own "Exception in ASGI application" for an app without our error middleware."""

    async def app(scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http":
            return
        authorization = dict(scope["headers"]).get(b"authorization")  # noqa: F841
        raise RuntimeError("an unguarded application failed")

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/", headers=auth(key))
    assert response.status_code == 500
    server.should_exit = True
    await serving


@pytest.fixture(params=["console", "json"])
def log_mode(request: pytest.FixtureRequest):
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("info", json=request.param == "json", stream=stream)
    yield request.param, stream
    structlog.reset_defaults()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


@pytest.fixture
async def services(database_url: str, tmp_path: Path):
    # A short lease: the reaper only acts once a worker has reached the store for a whole lease.
    svc = await open_services(database_url, tmp_path, lease_seconds=2.0)
    yield svc
    await svc.aclose()


async def test_logged_exceptions_hold_no_secrets(services, log_mode):
    mode, stream = log_mode
    keys_and_secrets = await _provoke_store_and_runtime_sites(services, stream.getvalue)
    await _provoke_retention_site(services, stream.getvalue)
    key = keys_and_secrets[0]
    await _provoke_mcp_site(key)
    _provoke_rtp_site()
    await _provoke_simulator_site()
    _log_media_sites()
    await _provoke_uvicorn(key)
    output = stream.getvalue()

    for event in EXCEPTION_SITES:
        assert event in output, f"{event} was not provoked"
    assert "Exception in ASGI application" in output
    secrets = [*keys_and_secrets, OBJECTIVE, "objective-5d1e7", "context-secret-88a1f", "transcript-4c2b9",
               HOOK_TOKEN, "1970-01-01", *NUMBERS, *(n.lstrip("+") for n in NUMBERS)]
    leaked = {s: sum(s in line for line in output.splitlines()) for s in secrets if s in output}
    assert not leaked, f"secrets in the log ({mode}): {leaked}"

    if mode == "json":
        errors = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"exception"' in line]
        assert {e["event"] for e in errors} >= EXCEPTION_SITES
        for entry in errors:
            assert entry["error"], entry["event"]
            stacks = entry["exception"]
            assert stacks and stacks[0]["exc_type"] == entry["error"]
            assert any(stack["frames"] for stack in stacks), entry["event"]
            for stack in stacks:
                for frame in stack["frames"]:
                    assert set(frame) == {"filename", "lineno", "name"}
        assert all(line.startswith("{") for line in output.splitlines() if line.strip())
    else:
        assert "Traceback (most recent call last)" in output
        assert "IntegrityError" in output
