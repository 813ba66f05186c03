"""Choosing the brain from settings, the LLM-played simulator persona, and the
``voicemailMessage`` request field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from byourside_server.agent.llm.brain import LLMBrain, clean_utterance, leaks_context
from byourside_server.agent.llm.provider import ChatProvider, LLMConfig
from byourside_server.agent.offline import OfflineBrain
from byourside_server.api.requests import validate_call_request
from byourside_server.clock import SystemClock
from byourside_server.errors import InvalidRequest
from byourside_server.runtime.registry import ProviderError, build_brain, build_telephony
from byourside_server.settings import Settings
from byourside_server.telephony.base import HangUp, Speech
from byourside_server.telephony.simulator.scenarios import load_scenarios
from byourside_server.telephony.simulator.provider import SimulatorTelephony
from byourside_server.telephony.base import DialRequest
from byourside_server.telephony.simulator.llm_persona import llm_persona_factory, persona_prompt
from fake_openai import Error, FakeOpenAI, say

BIN = Path(sys.executable).parent


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_offline_is_the_default_without_llm_settings():
    assert settings(brain="auto").effective_brain == "offline"
    assert isinstance(build_brain(settings(brain="auto")), OfflineBrain)


def test_auto_picks_the_llm_when_configured():
    brain = build_brain(settings(brain="auto", llm_base_url="http://127.0.0.1:9/v1", llm_model="m"))
    assert isinstance(brain, LLMBrain)
    assert isinstance(build_brain(settings(brain="offline", llm_base_url="http://x/v1", llm_model="m")), OfflineBrain)


def test_llm_without_settings_fails_with_a_clear_message():
    with pytest.raises(ProviderError, match="BYS_LLM_BASE_URL and BYS_LLM_MODEL"):
        build_brain(settings(brain="llm"))
    with pytest.raises(ProviderError, match="BYS_SIM_PERSONAS=llm"):
        build_telephony(settings(sim_personas="llm"), SystemClock())


def test_serve_refuses_to_start_with_llm_brain_and_no_model(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "BYS_DATA_DIR": str(tmp_path), "BYS_BRAIN": "llm", "BYS_PORT": "0"}
    result = subprocess.run([str(BIN / "byourside"), "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "error: The LLM needs BYS_LLM_BASE_URL and BYS_LLM_MODEL" in result.stderr
    assert "Traceback" not in result.stderr


def test_voicemail_message_is_validated():
    ok = validate_call_request({"to": "+14155550150", "objective": "x", "voicemailMessage": "  Call us back.  "})
    assert ok.voicemail_message == "Call us back."
    assert validate_call_request({"to": "+14155550150", "objective": "x"}).voicemail_message is None
    for bad in (42, "x" * 1001):
        with pytest.raises(InvalidRequest, match="voicemailMessage"):
            validate_call_request({"to": "+14155550150", "objective": "x", "voicemailMessage": bad})


def test_utterance_cleaning_and_context_leak_check():
    assert clean_utterance('Agent: "Hello there! [pause] **How** are you?"') == "Hello there! How are you?"
    context = "The customer is Dana Whitfield, card ending 3391, on a payment plan."
    assert leaks_context("Sure: the customer is Dana Whitfield, card ending 3391.", context)
    assert not leaks_context("I'm calling about a parcel for a customer.", context)


async def test_llm_persona_keeps_the_scripted_hold_transfer_and_spelling():
    from byourside_server.telephony.simulator.scenarios import Persona

    fake = FakeOpenAI().start()
    provider = ChatProvider(LLMConfig(base_url=fake.base_url, model="persona", backoff_seconds=0, max_retries=0))
    colleague = {"name": "Jo", "organisation": "Bookings", "greeting": "Bookings, Jo.",
                 "facts": [{"keywords": ["room"], "answer": "The room is free on the 9th."}]}
    persona = Persona(name="Al", organisation="The Inn", greeting="The Inn.", spelling_request="Spell the surname?",
                      spelling="Oduya", facts=(
                          {"keywords": ["price"], "answer": "It's forty.", "hold": "Bear with me."},
                          {"keywords": ["room", "function"], "answer": "Jo does that, one moment.",
                           "transfer_to": colleague}))
    try:
        fake.chat += [say("Forty dollars a night."), say("Jo does that, hang on."), say("It's free on the 9th.")]
        responder = llm_persona_factory(provider)(persona)
        assert [a.text for a in await responder.on_speech("What is the price for Mr. Oduya?")] == [
            "Spell the surname?"]  # scripted: the answer waits for the spelling
        assert [a.text for a in await responder.on_speech("O, D, U, Y, A.")] == ["Bear with me.", "It's forty."]
        assert [a.text for a in await responder.on_speech("And the price per night?")] == [
            "Bear with me.", "Forty dollars a night."]  # the hold line, then the model's answer
        assert [a.text for a in await responder.on_speech("Is the function room free?")] == [
            "Jo does that, hang on.", "Bookings, Jo."]  # the colleague greets after the transfer
        assert [a.text for a in await responder.on_speech("Which date is the room free?")] == [
            "It's free on the 9th."]  # the colleague is played by the model too
        assert "Jo (Bookings) takes the call" in fake.requests[0]["messages"][0]["content"]
    finally:
        fake.stop()


async def test_llm_persona_talks_through_the_simulator():
    fake = FakeOpenAI().start()
    provider = ChatProvider(LLMConfig(base_url=fake.base_url, model="persona", backoff_seconds=0, max_retries=0))
    try:
        fake.chat += [say("Yes, we have a table for two at seven tonight."), Error(500), say("Okay, bye! [HANG UP]")]
        telephony = SimulatorTelephony(load_scenarios(), SystemClock(), time_scale=0,
                                       persona_factory=llm_persona_factory(provider))
        outcome = await telephony.dial(DialRequest("c1", "+14155550123", "+14155550100", 30, "en-US", "alloy"))
        line = outcome.line
        greeting = await line.listen(5)
        assert isinstance(greeting, Speech) and "Copper Pot" in greeting.text  # the scripted greeting
        await line.say("Do you have a table for two tonight?")
        reply = await line.listen(5)
        assert reply.text == "Yes, we have a table for two at seven tonight."
        await line.say("What is your dress code?")  # the model fails: the scripted persona answers
        assert "smart casual" in (await line.listen(5)).text
        await line.say("Thanks, goodbye!")
        assert (await line.listen(5)).text == "Okay, bye!"
        assert isinstance(await line.listen(5), HangUp)
        system = fake.requests[0]["messages"][0]["content"]
        assert system == persona_prompt(load_scenarios().scenarios["copper_pot"].persona)
        assert "eighty-five dollars" in system and "Sofia" in system
        assert fake.requests[2]["messages"][-1] == {"role": "user", "content": "Thanks, goodbye!"}
    finally:
        await provider.aclose()
        fake.stop()
