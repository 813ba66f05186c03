"""The offline brain's share of this feature: evidence for every obtained value, and
leaving a voicemail message when the call asks for one (through the real runtime)."""

from __future__ import annotations

import asyncio

import pytest

from byourside_server.agent.offline import OfflineBrain
from byourside_server.api.requests import validate_call_request
from byourside_server.clock import SystemClock
from byourside_server.placement import place_call
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from byourside_server.telephony.simulator.provider import SimulatorTelephony
from byourside_server.telephony.simulator.scenarios import load_scenarios
from support import new_account, open_services


async def run_call(services, body):
    account, _ = await new_account(services)
    key = (await services.accounts.list_keys(account.id))[0]
    created = await place_call(services, account, key, validate_call_request(body))
    worker = Worker(services, SessionDeps(calls=services.calls, brain=OfflineBrain(), ring_timeout_seconds=30,
                                          telephony=SimulatorTelephony(load_scenarios(), SystemClock(), time_scale=0)),
                    concurrency=1)
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(500):
            call = await services.calls.get(account.id, created.call.id)
            if call.status.terminal:
                return call
            await asyncio.sleep(0.02)
        raise AssertionError("call did not finish")
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=10)


@pytest.fixture
async def services(tmp_path):
    svc = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    yield svc
    await svc.aclose()


async def test_offline_evidence_points_at_the_contact_turn(services):
    call = await run_call(services, {"to": "+14155550123", "objective": "Book a table and ask the menu price.",
                                     "fields": [{"name": "table_available", "type": "boolean"},
                                                {"name": "menu_price", "type": "number"}]})
    assert call.extracted == {"table_available": True, "menu_price": 85}
    assert set(call.evidence) == {"table_available", "menu_price"}
    for name, item in call.evidence.items():
        turn = call.turns[item["turnIndex"]]
        assert turn.speaker == "contact" and item["quote"] == turn.text
    assert "eighty-five" in call.evidence["menu_price"]["quote"]


async def test_offline_evidence_is_empty_when_nothing_was_obtained(services):
    call = await run_call(services, {"to": "+14155550130", "objective": "Ask the rent.",
                                     "fields": [{"name": "rent", "type": "number"}]})
    assert call.extracted == {"rent": None} and call.evidence == {}


async def test_offline_brain_leaves_the_voicemail_message_after_the_tone(services):
    message = "Please call Acme back about Friday."
    call = await run_call(services, {"to": "+14155550150", "objective": "Remind Chris about Friday.",
                                     "voicemailMessage": message})
    assert call.status.value == "voicemail" and call.voicemail_message == message
    agent = [t.text for t in call.turns if t.speaker == "agent"]
    assert len(agent) == 1 and agent[0].startswith("Hi, this is an AI assistant calling on behalf of ")
    assert agent[0].endswith(message)
    assert "left the requested message" in call.summary


async def test_offline_brain_hangs_up_on_voicemail_without_a_message(services):
    call = await run_call(services, {"to": "+14155550150", "objective": "Remind Chris about Friday."})
    assert call.status.value == "voicemail" and [t for t in call.turns if t.speaker == "agent"] == []
    assert "without leaving a message" in call.summary
