"""Consent and disclosure on a real store (SQLite and PostgreSQL), with a real worker, the offline
agent and a line that records: the recording notice where the callee's place requires it, an
account that keeps no recording, the AI disclosure in the account's words but never without it,
and the display name the callee hears."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from recorded_calls import RecordingTelephony, agent_turns, place_and_conduct
from support import auth, new_account, open_services

from byourside_server.agent.phrases import RECORDING_NOTICE
from byourside_server.api.app import create_app
from byourside_server.compliance.consent import ConsentSettingError, check_disclosure

CALIFORNIA = "+14155550123"  # all-party consent (415: San Francisco)
NEW_YORK = "+12125550123"  # one-party consent (212: New York City)
OBJECTIVE = "Ask what time they open tomorrow."
STANDARD = "Hi, this is an AI assistant calling on behalf of"


@pytest.fixture
async def world(database_url, tmp_path):
    services = await open_services(database_url, tmp_path)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        yield services, api
    await services.aclose()


def recordings_dir(services) -> Path:
    return services.settings.data_dir / "recordings"


async def test_a_recorded_call_to_an_all_party_consent_number_says_so_after_the_disclosure(world, tmp_path):
    services, api = world
    _, secret = await new_account(services, "copper")
    call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "line"),
                                   {"to": CALIFORNIA, "objective": OBJECTIVE})
    assert call["status"] == "completed"
    first = agent_turns(call)[0]
    assert first.startswith(f"{STANDARD} copper. {RECORDING_NOTICE} ")
    assert sum(RECORDING_NOTICE in said for said in agent_turns(call)) == 1
    assert call["recordingUrl"] is not None and (recordings_dir(services) / f"{call['id']}.wav").exists()


async def test_a_recorded_call_to_a_one_party_consent_number_has_no_notice(world, tmp_path):
    services, api = world
    _, secret = await new_account(services)
    call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "line"),
                                   {"to": NEW_YORK, "objective": OBJECTIVE})
    assert call["status"] == "completed" and agent_turns(call)[0].startswith(STANDARD)
    assert not any("recorded" in said for said in agent_turns(call))
    assert call["recordingUrl"] is not None  # recorded all the same: the law there asks no notice


async def test_an_account_can_have_the_notice_said_on_every_call(world, tmp_path):
    services, api = world
    account, secret = await new_account(services)
    await services.accounts.set_privacy(account.id, recording_notice="always")
    call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "line"),
                                   {"to": NEW_YORK, "objective": OBJECTIVE})
    assert RECORDING_NOTICE in agent_turns(call)[0]


async def test_an_account_that_does_not_record_keeps_no_recording_and_announces_none(world, tmp_path):
    services, api = world
    account, secret = await new_account(services)
    await services.accounts.set_privacy(account.id, record_calls=False)
    telephony = RecordingTelephony(tmp_path / "line")
    call = await place_and_conduct(services, api, secret, telephony, {"to": CALIFORNIA, "objective": OBJECTIVE})
    assert call["status"] == "completed" and call["recordingUrl"] is None
    assert not any("recorded" in said for said in agent_turns(call))
    assert telephony.requests[call["id"]].record is False  # the line is asked to write no audio at all
    assert telephony.lines[call["id"]].recording_path() is None
    assert not list((tmp_path / "line").glob("*.wav"))
    assert not list(recordings_dir(services).glob("*.wav"))
    recording = await api.get(f"/v1/agent/calls/{call['id']}/recording", headers=auth(secret))
    assert recording.status_code == 404


async def test_a_server_that_records_nothing_by_default_keeps_nothing(database_url, tmp_path):
    services = await open_services(database_url, tmp_path, record_calls=False)
    try:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
            account, secret = await new_account(services)
            call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "line"),
                                           {"to": CALIFORNIA, "objective": OBJECTIVE})
            assert call["recordingUrl"] is None and RECORDING_NOTICE not in agent_turns(call)[0]
            # ... unless the account asks to record
            await services.accounts.set_privacy(account.id, record_calls=True)
            call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "line2"),
                                           {"to": CALIFORNIA, "objective": OBJECTIVE})
            assert call["recordingUrl"] is not None and RECORDING_NOTICE in agent_turns(call)[0]
    finally:
        await services.aclose()


async def test_the_callee_hears_the_display_name_and_the_accounts_own_disclosure(world, tmp_path):
    services, api = world
    account, secret = await new_account(services, "acct-7f3a")
    await services.accounts.set_privacy(account.id, display_name="Acme Dental")
    call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "line"),
                                   {"to": NEW_YORK, "objective": OBJECTIVE})
    assert agent_turns(call)[0].startswith(f"{STANDARD} Acme Dental. ")
    assert "acct-7f3a" not in call["transcript"]

    wording = check_disclosure("Hello, this is Ava, an AI assistant calling for {name}.")
    await services.accounts.set_privacy(account.id, ai_disclosure=wording)
    call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "line2"),
                                   {"to": CALIFORNIA, "objective": OBJECTIVE})
    assert agent_turns(call)[0].startswith(
        f"Hello, this is Ava, an AI assistant calling for Acme Dental. {RECORDING_NOTICE} ")


@pytest.mark.parametrize("wording", ["", "   ", "Hi, this is Ava calling for {name}.", "Hello from {name}, I'm Sam.",
                                     "Chiamo ai clienti di {name}.", "An AI for {company}."])
def test_wording_that_drops_or_breaks_the_ai_disclosure_is_refused(wording):
    with pytest.raises(ConsentSettingError):
        check_disclosure(wording)


async def test_a_stored_wording_without_the_disclosure_still_yields_it(world, tmp_path):
    """Set around the checks (straight into the store): the brains fall back to the standard disclosure."""
    services, api = world
    account, secret = await new_account(services)
    await services.accounts.set_privacy(account.id, display_name="Acme Dental",
                                        ai_disclosure="Hi, it's Sam from {name}!")
    call = await place_and_conduct(services, api, secret, RecordingTelephony(tmp_path / "line"),
                                   {"to": NEW_YORK, "objective": OBJECTIVE})
    assert agent_turns(call)[0].startswith(f"{STANDARD} Acme Dental. ")
    assert "Sam" not in call["transcript"]
