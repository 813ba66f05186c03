"""The consent rules without a store: which places get the recording notice, and that the LLM and
realtime brains are told the same first words as the offline agent speaks (agent/phrases.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC
from typing import Any

import numpy as np
import pytest

from byourside_server.agent import phrases as say
from byourside_server.agent.llm.prompts import system_prompt
from byourside_server.agent.offline import OfflineBrain
from byourside_server.agent.realtime import (
    RealtimeCall,
    RealtimeError,
    RealtimeModel,
    RealtimeSession,
)
from byourside_server.agent.realtime.conversation import RealtimeBrain
from byourside_server.compliance.consent import (
    ConsentPolicy,
    all_party_consent,
    consent_region,
)
from byourside_server.domain import CallTask
from byourside_server.store.records import Account
from byourside_server.telephony.media import MediaChannel, Playback


@pytest.mark.parametrize("number, region, notice", [
    ("+14155550123", "US-CA", True),  # San Francisco
    ("+13055550123", "US-FL", True),  # Miami: "Florida" in the geocoding data
    ("+12065550123", "US-WA", True),  # Seattle: "Washington State"
    ("+16175550123", "US-MA", True),
    ("+12125550123", "US-NY", False),
    ("+15125550123", "US-TX", False),
    ("+12025550123", "US-DC", False),  # "Washington D.C." is not Washington State
    ("+18005550123", "US", True),  # toll-free: no state, so the cautious reading
    ("+4930123456", "DE", True),
    ("+33123456789", "FR", True),
    ("+442071234567", "GB", True),
    ("+16045550123", "CA", True),  # Canada
    ("+972501234567", "IL", False),
    ("+6421123456", "NZ", False),
])
def test_the_notice_follows_the_callees_place(number, region, notice):
    assert consent_region(number) == region
    assert all_party_consent(number) is notice


def _account(**settings: Any) -> Account:
    from datetime import datetime

    return Account(id="a", name="acct", default_caller_id=None, webhook_secret="s", calls_per_minute=1,
                   max_concurrent_calls=1, monthly_minutes=1, created_at=datetime.now(UTC), **settings)


def test_the_accounts_choices_come_before_the_servers_defaults():
    server = ConsentPolicy(record_calls=False, recording_notice="required")
    assert not server.records(_account()) and server.records(_account(record_calls=True))
    assert ConsentPolicy().records(_account()) and not ConsentPolicy().records(_account(record_calls=False))
    assert not server.notice_due(_account(), "+12125550123")
    assert server.notice_due(_account(recording_notice="always"), "+12125550123")
    assert ConsentPolicy(recording_notice="always").notice_due(_account(), "+12125550123")


def task(**changes: Any) -> CallTask:
    base: dict[str, Any] = {"call_id": "c1", "to": "+14155550123", "from_number": "+14155550100",
                            "objective": "Ask when they open.", "context": None, "fields": (), "language": "en-US",
                            "voice": "alloy", "account_name": "Acme Dental", "max_duration_seconds": 600}
    return CallTask(**{**base, **changes})


def test_the_llm_brain_is_told_the_exact_first_words():
    prompt = system_prompt(task(recording_notice=True))
    assert f'"Hi, this is an AI assistant calling on behalf of Acme Dental. {say.RECORDING_NOTICE}"' in prompt
    custom = system_prompt(task(ai_disclosure="Hello, I'm Ava, an AI assistant for {name}."))
    assert '"Hello, I\'m Ava, an AI assistant for Acme Dental."' in custom and say.RECORDING_NOTICE not in custom
    stripped = system_prompt(task(ai_disclosure="Hello, I'm Ava from {name}."))
    assert '"Hi, this is an AI assistant calling on behalf of Acme Dental."' in stripped


class _QuietMedia(MediaChannel):
    """A line nobody speaks on; ends when hung up."""

    def __init__(self) -> None:
        super().__init__()

    async def events(self) -> AsyncIterator[Any]:
        await self.ended.wait()
        return
        yield

    def play(self, pcm: np.ndarray) -> Playback:
        raise AssertionError("nothing is played in this test")

    def clear(self) -> None:
        pass

    def mark(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def send_digits(self, digits: str) -> None:
        pass

    async def hangup(self) -> None:
        self._mark_ended(by_far_end=False)

    def elapsed_ms(self) -> int:
        return 0


class _RefusingModel(RealtimeModel):
    """Keeps the instructions it is opened with, then refuses the session."""

    def __init__(self) -> None:
        self.instructions: list[str] = []

    async def connect(self, instructions: str, tools: Sequence[Mapping[str, Any]], *, voice: str,
                      language: str) -> RealtimeSession:
        self.instructions.append(instructions)
        raise RealtimeError("refused", retryable=False)


async def test_the_realtime_brain_is_told_the_same_first_words():
    model = _RefusingModel()
    brain = RealtimeBrain(model, OfflineBrain(), retry_delay_seconds=0.01)

    async def no_turns(turns: Any) -> None:
        pass

    media = _QuietMedia()
    await asyncio.wait_for(brain.converse_media(task(recording_notice=True), media, RealtimeCall(no_turns)), 30)
    await media.hangup()
    assert f'"{say.greeting(task(recording_notice=True))}"' in model.instructions[0]
    assert "Acme Dental" in say.greeting(task(recording_notice=True))


def test_the_cli_sets_what_callees_hear_and_refuses_a_disclosure_without_ai(tmp_path, monkeypatch, capsys):
    from byourside_server.cli.main import main

    monkeypatch.setenv("BYS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BYS_DATABASE_URL", raising=False)
    assert main(["migrate"]) == 0 and main(["accounts", "create", "acme"]) == 0
    assert main(["accounts", "display-name", "acme", "Acme Dental"]) == 0
    assert main(["accounts", "consent", "acme", "--disclosure", "Hi from {name}"]) == 1
    assert "must tell the callee they are speaking with an AI" in capsys.readouterr().err
    assert main(["accounts", "consent", "acme", "--no-record", "--recording-notice", "always"]) == 0
    assert main(["accounts", "retention", "acme", "--recordings", "30", "--transcripts", "0"]) == 0
    shown = capsys.readouterr().out
    assert "display name:      Acme Dental" in shown and "recording:         off" in shown
    assert "recording notice:  always" in shown and "recordings:        30 days" in shown
    assert "transcripts:       kept forever" in shown
    assert main(["accounts", "retention", "acme", "--recordings", "-1"]) == 1
