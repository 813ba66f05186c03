"""Transfer to a person (transferTo, ext): validation at the API, and whole calls through the API, the real
runtime and the phone simulator on SQLite, conducted by the offline agent and by the LLM brain (the fake
OpenAI server), where the callee asks for a person and is handed over."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fake_openai import FakeOpenAI, analysis, say, tool
from support import auth, new_account, open_services

from byourside_server.agent.llm.brain import LLMBrain
from byourside_server.agent.llm.provider import ChatProvider, LLMConfig
from byourside_server.agent.offline import OfflineBrain
from byourside_server.agent.transfer import (
    HANDING_OVER,
    NOBODY_REACHED,
    TRANSFER_FAILED_NOTE,
    asks_for_a_person,
)
from byourside_server.api.app import create_app
from byourside_server.clock import SystemClock
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from byourside_server.telephony.simulator.provider import SimulatorTelephony
from byourside_server.telephony.simulator.scenarios import load_scenarios

WANTS_PERSON = "+14155550134"  # asks for a real person instead of answering
RECEPTIONIST = "+14155550100"
BUSY = "+14155550161"
NO_ANSWER = "+14155550160"
TERMINAL = {"completed", "failed", "voicemail", "no_answer", "declined"}
OBJECTIVE = "Ask when the policy renewal is due."
BRIEF = "Robin from Harbor Insurance wants a person about their policy renewal date."


class Harness:
    def __init__(self, services, client, secret, telephony, fake=None) -> None:
        self.services, self.client, self.secret, self.telephony, self.fake = services, client, secret, telephony, fake

    async def post(self, **body) -> httpx.Response:
        return await self.client.post("/v1/agent/calls", json={"to": WANTS_PERSON, "objective": OBJECTIVE, **body},
                                      headers=auth(self.secret))

    async def call(self, **body) -> dict:
        created = await self.post(**body)
        assert created.status_code == 201, created.text
        call_id = created.json()["callId"]
        for _ in range(1000):
            got = (await self.client.get(f"/v1/agent/calls/{call_id}", headers=auth(self.secret))).json()
            if got["status"] in TERMINAL:
                return got
            await asyncio.sleep(0.02)
        raise AssertionError(f"call stayed {got['status']}")

    async def calls_stored(self) -> int:
        listed = await self.client.get("/v1/agent/calls", headers=auth(self.secret))
        return len(listed.json()["calls"])


async def _harness(tmp_path, brain, fake=None):
    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    _, secret = await new_account(services, name="Harbor Customers")
    telephony = SimulatorTelephony(load_scenarios(), SystemClock(), time_scale=0)
    worker = Worker(services, SessionDeps(calls=services.calls, telephony=telephony, brain=brain,
                                          ring_timeout_seconds=30), concurrency=2)
    task = asyncio.create_task(worker.run())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)), base_url="http://testserver")
    harness = Harness(services, client, secret, telephony, fake)

    async def close() -> None:
        worker.stop()
        await asyncio.wait_for(task, timeout=10)
        await client.aclose()
        await brain.aclose()
        await services.aclose()

    return harness, close


@pytest.fixture
async def offline(tmp_path):
    harness, close = await _harness(tmp_path, OfflineBrain())
    yield harness
    await close()


@pytest.fixture
async def llm(tmp_path):
    fake = FakeOpenAI().start()
    provider = ChatProvider(LLMConfig(base_url=fake.base_url, model="fake", backoff_seconds=0.0, max_retries=1))
    harness, close = await _harness(tmp_path, LLMBrain(provider), fake)
    yield harness
    await close()
    fake.stop()


# validation
@pytest.mark.parametrize("transfer_to", [
    "4155550100",  # not E.164
    "+1 415 555 0100",
    ["+14155550100", "+14155550100"],  # twice
    [],
    ["+14155550100"] * 6,
    42,
    {"to": "+14155550100"},
    "+19005550100",  # premium rate: the guardrails refuse it as they would for 'to'
    "+8816123456",  # satellite
    "+33612345678",  # a region this server does not call
    WANTS_PERSON,  # the number being called
])
async def test_an_invalid_transfer_to_is_one_token_and_creates_nothing(offline, transfer_to):
    refused = await offline.post(transferTo=transfer_to)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_transfer_to"
    assert "Traceback" not in refused.text and "0100" not in refused.json()["message"]
    assert await offline.calls_stored() == 0


async def test_an_unknown_transfer_mode_is_invalid_request(offline):
    refused = await offline.post(transferTo=RECEPTIONIST, transferMode="lukewarm")
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_request")
    assert await offline.calls_stored() == 0


async def test_the_call_shows_its_transfer_numbers(offline):
    created = await offline.post(transferTo=RECEPTIONIST, transferMode="warm")
    call = (await offline.client.get(f"/v1/agent/calls/{created.json()['callId']}", headers=auth(offline.secret))).json()
    assert (call["transferTo"], call["transferMode"]) == ([RECEPTIONIST], "warm")
    plain = await offline.post(to="+14155550123")
    call = (await offline.client.get(f"/v1/agent/calls/{plain.json()['callId']}", headers=auth(offline.secret))).json()
    assert (call["transferTo"], call["transferMode"]) == (None, None)


def test_what_counts_as_asking_for_a_person():
    for words in ("Can I talk to a real person?", "I want to speak with a human.", "Put me through to someone, please",
                  "I'm not talking to a robot.", "Is there an actual person there?"):
        assert asks_for_a_person(words), words
    for words in ("We're open until five.", "A person can pick it up tomorrow.", "Let me transfer you to billing."):
        assert not asks_for_a_person(words), words


# whole calls: the offline agent
async def test_the_callee_asks_for_a_person_and_is_transferred_cold(offline):
    call = await offline.call(transferTo=RECEPTIONIST)
    assert (call["status"], call["endReason"]) == ("completed", "transferred"), call
    assert call["answeredBy"] == "human"
    turns = call["turns"]
    assert "real person" in turns[-2]["text"] and turns[-1] == {**turns[-1], "speaker": "agent", "text": HANDING_OVER}
    assert "handed over" in call["summary"]
    (handed,) = offline.telephony.transfers
    assert (handed.call_id, handed.to, handed.brief) == (call["id"], RECEPTIONIST, None)
    assert handed.at_ms >= turns[-1]["endMs"]  # after the hand-over line: the transcript ends there


async def test_a_warm_transfer_briefs_the_person_first(offline):
    call = await offline.call(transferTo=RECEPTIONIST, transferMode="warm")
    assert call["endReason"] == "transferred"
    (handed,) = offline.telephony.transfers
    assert "AI assistant calling for Harbor Customers" in handed.brief and "policy renewal" in handed.brief


async def test_the_numbers_are_tried_in_order_until_one_answers(offline):
    call = await offline.call(transferTo=[BUSY, NO_ANSWER, RECEPTIONIST])
    assert call["endReason"] == "transferred"
    assert [t.to for t in offline.telephony.transfers] == [RECEPTIONIST]


async def test_nobody_answering_leaves_the_callee_with_an_apology(offline):
    call = await offline.call(transferTo=[BUSY])
    assert (call["status"], call["endReason"]) == ("completed", "objective_unreachable"), call
    assert NOBODY_REACHED in " ".join(t["text"] for t in call["turns"] if t["speaker"] == "agent")
    assert offline.telephony.transfers == []


async def test_without_transfer_to_nobody_is_transferred(offline):
    call = await offline.call()
    assert call["endReason"] != "transferred" and offline.telephony.transfers == []
    assert HANDING_OVER not in (call["transcript"] or "")


# whole calls: the LLM brain's transfer_call tool
async def test_the_llm_brain_transfers_with_its_tool_and_its_own_brief(llm):
    llm.fake.chat += [
        say("Hi, this is an AI assistant calling on behalf of Harbor Customers about your policy renewal."),
        tool("transfer_call", "Of course, I'll connect you with a colleague now.", brief=BRIEF,
             reason="They asked for a human."),
    ]
    llm.fake.analysis.append(analysis("Robin asked for a person and was transferred.", None, {}, {}))
    call = await llm.call(transferTo=RECEPTIONIST, transferMode="warm")
    assert (call["status"], call["endReason"]) == ("completed", "transferred"), call
    assert call["turns"][-1]["text"] == "Of course, I'll connect you with a colleague now."
    (handed,) = llm.telephony.transfers
    assert (handed.to, handed.brief) == (RECEPTIONIST, BRIEF)
    first = llm.fake.chat_requests[0]
    assert "transfer_call" in {t["function"]["name"] for t in first["tools"]}
    assert "transfer_call" in first["messages"][0]["content"]
    assert RECEPTIONIST not in str(first)  # the model never sees (or chooses) the numbers


async def test_the_llm_brain_hears_when_the_transfer_fails_and_carries_on(llm):
    llm.fake.chat += [
        tool("transfer_call", "Let me connect you.", brief="A caller wants a person."),
        tool("end_call", "Sorry, nobody is free right now. Goodbye!", outcome="objective_unreachable",
             reason="Nobody could take the call."),
    ]
    llm.fake.analysis.append(analysis("Nobody could take the call.", False, {}, {}))
    call = await llm.call(transferTo=BUSY)
    assert call["endReason"] == "objective_unreachable" and llm.telephony.transfers == []
    assert any(m.get("content") == TRANSFER_FAILED_NOTE for m in llm.fake.chat_requests[1]["messages"])


async def test_the_llm_brain_has_no_transfer_tool_without_transfer_to(llm):
    llm.fake.chat += [tool("end_call", "Thanks, goodbye!", outcome="objective_unreachable", reason="done")]
    llm.fake.analysis.append(analysis("Nothing.", False, {}, {}))
    await llm.call()
    assert "transfer_call" not in {t["function"]["name"] for t in llm.fake.chat_requests[0]["tools"]}
