"""The LLM brain end to end: the fake OpenAI server drives real calls placed through
the API, conducted by the real runtime over the phone simulator, stored in SQLite."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from byourside_server.agent.llm.brain import (
    FAILURE_LINE, HOLDING_LINES, PRIVATE_REFUSAL, UNANSWERED_QUESTION, LLMBrain,
)
from byourside_server.agent.llm.provider import ChatProvider, LLMConfig
from byourside_server.api.app import create_app
from byourside_server.clock import SystemClock
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from byourside_server.telephony.simulator.provider import SimulatorTelephony
from byourside_server.telephony.simulator.scenarios import load_scenarios
from fake_openai import Error, FakeOpenAI, analysis, say, tool
from support import auth, new_account, open_services

COPPER_POT = "+14155550123"
IVR = "+14155550140"
VOICEMAIL = "+14155550150"
TERMINAL = {"completed", "failed", "voicemail", "no_answer", "declined"}


class Harness:
    def __init__(self, services, fake, client, secret, account_name):
        self.services, self.fake, self.client, self.secret, self.account_name = services, fake, client, secret, account_name

    async def call(self, to: str, objective: str = "Book a table for two tonight and ask the tasting menu price.",
                   **extra) -> dict:
        body = {"to": to, "objective": objective, **extra}
        created = await self.client.post("/v1/agent/calls", json=body, headers=auth(self.secret))
        assert created.status_code in (200, 201), created.text
        call_id = created.json()["callId"]
        for _ in range(1000):
            got = (await self.client.get(f"/v1/agent/calls/{call_id}", headers=auth(self.secret))).json()
            if got["status"] in TERMINAL:
                return got
            await asyncio.sleep(0.02)
        raise AssertionError(f"call stayed {got['status']}")


@pytest.fixture
async def harness(tmp_path):
    fake = FakeOpenAI().start()
    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    account, secret = await new_account(services, name="Acme Travel")
    provider = ChatProvider(LLMConfig(base_url=fake.base_url, model="fake", backoff_seconds=0.0, max_retries=1))
    brain = LLMBrain(provider)
    telephony = SimulatorTelephony(load_scenarios(), SystemClock(), time_scale=0)
    worker = Worker(services, SessionDeps(calls=services.calls, telephony=telephony, brain=brain,
                                          ring_timeout_seconds=30), concurrency=2)
    task = asyncio.create_task(worker.run())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(services)),
                                 base_url="http://testserver") as client:
        yield Harness(services, fake, client, secret, account.name)
    worker.stop()
    await asyncio.wait_for(task, timeout=10)
    await provider.aclose()
    await services.aclose()
    fake.stop()


def agent_lines(call: dict) -> list[str]:
    return [t["text"] for t in call["turns"] if t["speaker"] == "agent"]


FIELDS = [{"name": "table_available", "type": "boolean"}, {"name": "menu_price", "type": "number"}]


def script_copper_pot(fake: FakeOpenAI) -> None:
    fake.chat += [
        say("Hi, this is an AI assistant calling on behalf of Acme Travel. Do you have a table for two tonight?"),
        say("Wonderful. And how much is the tasting menu per person?"),
        tool("end_call", "So a table at seven and eighty-five dollars per person. Thank you so much, goodbye!",
             outcome="objective_met", reason="Got both answers."),
    ]


async def test_conversation_ends_with_end_call_and_analysis_with_evidence(harness):
    fake = harness.fake
    script_copper_pot(fake)
    fake.analysis.append(analysis(
        "Sofia confirmed a table for two at seven; the tasting menu is $85 per person.", True,
        {"table_available": True, "menu_price": 85},
        {"table_available": {"quote": "we have a table for two available tonight", "turnIndex": 2},
         "menu_price": {"quote": "The tasting menu is eighty-five dollars per person", "turnIndex": 4}}))
    call = await harness.call(COPPER_POT, fields=FIELDS)
    assert call["status"] == "completed" and call["endReason"] == "objective_met"
    assert call["objectiveMet"] is True
    assert call["extracted"] == {"table_available": True, "menu_price": 85}
    assert call["evidence"]["menu_price"] == {"quote": "The tasting menu is eighty-five dollars per person",
                                              "turnIndex": 4}
    speakers = [t["speaker"] for t in call["turns"]]
    assert speakers == ["contact", "agent", "contact", "agent", "contact", "agent", "contact"]
    assert "table for two available tonight" in call["turns"][2]["text"]
    assert call["turns"][-1]["text"] == "Okay, bye!"  # the persona heard the goodbye before we hung up
    # Streaming and tools were used; the system prompt carries the objective, fields and disclosure.
    first = fake.chat_requests[0]
    assert first["stream"] is True and {t["function"]["name"] for t in first["tools"]} == {
        "end_call", "press_digits", "wait_silently"}
    system = first["messages"][0]["content"]
    assert "Acme Travel" in system and "tasting menu" in system and "menu_price (number)" in system
    assert "AI assistant" in system
    assert first["messages"][1]["content"].endswith("The Copper Pot, this is Sofia speaking. How can I help you?")
    # The second request saw the tool-free first exchange, the third saw both answers.
    assert [m["role"] for m in fake.chat_requests[2]["messages"]] == ["system", "user", "assistant", "user",
                                                                       "assistant", "user"]
    schema = fake.analysis_requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["extracted"]["properties"]["menu_price"]["type"] == ["number", "null"]
    assert "[4] Contact:" in fake.analysis_requests[0]["messages"][1]["content"]


async def test_value_without_supporting_quote_becomes_null(harness):
    fake = harness.fake
    script_copper_pot(fake)
    fake.analysis.append(analysis(
        "Table available; price given.", True,
        {"table_available": True, "menu_price": 95},
        {"table_available": {"quote": "valet parking is free", "turnIndex": 2},  # not said
         "menu_price": {"quote": "eighty-five dollars per person", "turnIndex": 2}}))  # wrong turn
    call = await harness.call(COPPER_POT, fields=FIELDS)
    assert call["status"] == "completed"
    assert call["extracted"] == {"table_available": None, "menu_price": None}
    assert call["evidence"] == {}


async def test_ivr_is_navigated_with_press_digits(harness):
    fake = harness.fake
    fake.chat += [
        tool("press_digits", digits="1"),
        tool("wait_silently", seconds=10),
        say("Hi, this is an AI assistant calling on behalf of Acme Travel. Do you have a table for two tonight?"),
        tool("end_call", "Thank you, goodbye!", outcome="objective_met", reason="Table confirmed."),
    ]
    fake.analysis.append(analysis("Reached Sofia through the menu.", True, {}, {}))
    call = await harness.call(IVR)
    assert call["status"] == "completed" and call["endReason"] == "objective_met"
    texts = [t["text"] for t in call["turns"]]
    assert texts[0].startswith("Thank you for calling The Copper Pot")
    assert texts[1] == "Connecting you now."  # the menu accepted our digit
    assert "Sofia" in texts[2]
    assert "[The call was answered.] Thank you for calling" in fake.chat_requests[0]["messages"][1]["content"]
    assert fake.chat_requests[1]["messages"][-1] == {"role": "user", "content": "Connecting you now."}


async def test_provider_500s_then_recovery_uses_a_holding_line(harness):
    fake = harness.fake
    script_copper_pot(fake)
    fake.analysis.append(analysis("ok", True, {"table_available": None, "menu_price": None}, {}))
    fake.fail_next = 2  # one request plus its one retry fail: the caller hears a holding line, then it recovers
    call = await harness.call(COPPER_POT, fields=FIELDS)
    assert call["status"] == "completed" and call["endReason"] == "objective_met"
    lines = agent_lines(call)
    assert lines[0] == HOLDING_LINES[0]
    assert lines[1].startswith("Hi, this is an AI assistant")
    assert FAILURE_LINE not in lines


async def test_provider_down_fails_politely(harness):
    harness.fake.down = True
    call = await harness.call(COPPER_POT, fields=FIELDS)
    assert call["status"] == "failed" and call["endReason"] == "error:llm_unavailable"
    lines = agent_lines(call)
    assert lines[0] == HOLDING_LINES[0] and lines[-1] == FAILURE_LINE
    assert call["extracted"] == {"table_available": None, "menu_price": None}
    assert call["summary"] and "unavailable" in call["summary"]
    assert harness.fake.analysis_requests == []


async def test_context_is_never_spoken(harness):
    fake = harness.fake
    context = "The customer is Jordan Lee, account number 4471, who still owes a forty dollar late fee."
    fake.chat += [
        say("Hi, this is an AI assistant calling on behalf of Acme Travel about a table for two tonight."),
        say("Sure, my notes say the customer is Jordan Lee, account number 4471, who still owes a forty dollar fee."),
        tool("end_call", "Thanks, goodbye!", outcome="objective_unreachable", reason="done"),
        tool("end_call", "Nothing else, thank you. Goodbye!", outcome="objective_unreachable", reason="done"),
    ]
    fake.analysis.append(analysis("ok", False, {}, {}))
    call = await harness.call(COPPER_POT, context=context)
    assert call["status"] == "completed" and call["endReason"] == "objective_unreachable"
    spoken = " ".join(agent_lines(call))
    assert "4471" not in spoken and "Jordan Lee" not in spoken
    assert PRIVATE_REFUSAL in agent_lines(call)
    assert context in fake.chat_requests[0]["messages"][0]["content"]  # the model had it, privately
    assert "never read it out" in fake.chat_requests[0]["messages"][0]["content"]


async def test_voicemail_ends_as_voicemail_and_leaves_the_message(harness):
    harness.fake.chat.append(tool("end_call", outcome="voicemail", reason="A voicemail greeting answered."))
    call = await harness.call(VOICEMAIL, voicemailMessage="Please call Acme Travel back about your booking.")
    assert call["status"] == "voicemail" and call["endReason"] == "voicemail"
    assert agent_lines(call) == ["Hi, this is an AI assistant calling on behalf of Acme Travel. "
                                 "Please call Acme Travel back about your booking."]
    assert call["objectiveMet"] is None and "message was left" in call["summary"]
    assert harness.fake.analysis_requests == []


async def test_voicemail_without_message_hangs_up_silently(harness):
    harness.fake.chat.append(tool("end_call", outcome="voicemail", reason="Voicemail."))
    call = await harness.call(VOICEMAIL)
    assert call["status"] == "voicemail" and agent_lines(call) == []
    assert "without leaving a message" in call["summary"]


async def test_end_call_right_after_a_question_is_held_until_it_is_answered(harness):
    fake = harness.fake
    fake.chat += [
        say("Hi, this is an AI assistant calling on behalf of Acme Travel."),
        # Sofia asks how she can help; the model wrongly wants to hang up on her question.
        tool("end_call", "Bye!", outcome="objective_met", reason="heard enough"),
        say("Do you have a table for two tonight?"),
        tool("end_call", "Perfect, that's all I needed. Goodbye!", outcome="objective_met", reason="done"),
    ]
    fake.analysis.append(analysis("ok", True, {}, {}))
    call = await harness.call(COPPER_POT)
    assert call["status"] == "completed"
    lines = agent_lines(call)
    assert "Bye!" not in lines and lines[-1] == "Perfect, that's all I needed. Goodbye!"
    assert call["turns"][2]["text"] == "Hi! How can I help you?"
    held = fake.chat_requests[2]["messages"]
    assert held[-1] == {"role": "tool", "tool_call_id": "call_0", "content": UNANSWERED_QUESTION}


async def test_analysis_falls_back_to_json_mode_when_schemas_are_unsupported(harness):
    fake = harness.fake
    script_copper_pot(fake)
    fake.analysis += [Error(400, "response_format json_schema is not supported"), analysis(
        "Table at seven.", True, {"table_available": True, "menu_price": None},
        {"table_available": {"quote": "Yes, we have a table for two", "turnIndex": 2}, "menu_price": None})]
    call = await harness.call(COPPER_POT, fields=FIELDS)
    assert call["extracted"] == {"table_available": True, "menu_price": None}
    assert call["evidence"] == {"table_available": {"quote": "Yes, we have a table for two", "turnIndex": 2}}
    formats = [r["response_format"]["type"] for r in fake.analysis_requests]
    assert formats == ["json_schema", "json_object"]
    assert fake.analysis_requests[1]["response_format"]["schema"]["required"] == [
        "summary", "objectiveMet", "extracted", "evidence"]
    assert "JSON schema:" in fake.analysis_requests[1]["messages"][0]["content"]


async def test_screening_assistant_hears_who_is_calling_and_puts_us_through(harness):
    fake = harness.fake
    fake.chat += [
        say("Hi, this is an AI assistant calling on behalf of Acme Travel, to ask whether Dana is free on Saturday."),
        tool("wait_silently", seconds=15),
        say("Hi Dana, are you free on Saturday June fourteenth?"),
        tool("end_call", "Great, thank you. Goodbye!", outcome="objective_met", reason="She is free."),
    ]
    fake.analysis.append(analysis("Dana is free.", True, {"free": True},
                                  {"free": {"quote": "I'm free that Saturday", "turnIndex": 5}}))
    call = await harness.call("+14155550141", objective="Ask Dana whether she is free on Saturday.",
                              fields=[{"name": "free", "type": "boolean"}])
    assert call["status"] == "completed" and call["extracted"] == {"free": True}
    texts = [t["text"] for t in call["turns"]]
    assert "call screening service" in texts[0] and texts[2].startswith("Thank you. Please stay on the line")
    assert texts[3] == "Hi, this is Dana." and texts[5] == "Yes, I'm free that Saturday."



async def test_analysis_falls_back_when_the_server_answers_500_about_the_format(harness):
    # llama-cpp-python's server rejects the json_schema format with HTTP 500 naming response_format.
    fake = harness.fake
    script_copper_pot(fake)
    fake.analysis += [Error(500, "Input should be 'text' or 'json_object' (loc: body.response_format.type)"),
                      Error(500, "Input should be 'text' or 'json_object' (loc: body.response_format.type)"),
                      analysis("ok", True, {"table_available": None, "menu_price": None}, {})]
    call = await harness.call(COPPER_POT, fields=FIELDS)
    assert call["status"] == "completed" and call["summary"] == "ok"
    assert [r["response_format"]["type"] for r in fake.analysis_requests] == ["json_schema", "json_schema",
                                                                              "json_object"]
    script_copper_pot(fake)  # the next call goes straight to JSON mode
    fake.analysis.append(analysis("again", True, {"table_available": None, "menu_price": None}, {}))
    call = await harness.call(COPPER_POT, fields=FIELDS)
    assert call["summary"] == "again" and fake.analysis_requests[-1]["response_format"]["type"] == "json_object"
    assert len(fake.analysis_requests) == 4


async def test_voicemail_greeting_then_tone_is_voicemail_even_if_the_model_talks(harness):
    # A weak model greets the machine as if it were a person; the record tone settles it.
    harness.fake.chat.append(say("Hello! Is this Chris?"))
    call = await harness.call(VOICEMAIL, voicemailMessage="Please call Acme Travel back.")
    assert call["status"] == "voicemail" and call["endReason"] == "voicemail"
    assert agent_lines(call)[-1].endswith("Please call Acme Travel back.")
    assert len(harness.fake.chat_requests) == 1
