"""The phone simulator over real SIP and RTP on loopback (telephony/simulator/over_sip.py).

Our sip provider dials the SIP simulator, which rings, rejects or answers per
scenario. The tests without the ``voice`` mark need no speech models; the
``voice`` ones run whole conversations: the simulator speaks its scenario
through Piper and hears the agent through faster-whisper, the runtime's
offline agent does the same on the other side, and the call object ends up
with the status, transcript, fields and recording of a real audio call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sipp_uas import SIPP, sipp_uac_call
from support import IN_CI, conduct_call, new_account, open_services
from test_sip_dial import NoModels

from byourside_server.agent.offline import OfflineBrain
from byourside_server.telephony.base import Beep, DialRequest, DialResult, HangUp, Silence
from byourside_server.telephony.simulator.over_sip import SipSimulator
from byourside_server.telephony.simulator.scenarios import load_scenarios
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.telephony import VoicedTelephony
from byourside_server.voice.recorder import read_stereo


async def started_simulator(voice) -> SipSimulator:
    return await SipSimulator(load_scenarios(), voice, host="127.0.0.1", port=0).start()


def request(to: str, ring_timeout: float = 10.0) -> DialRequest:
    return DialRequest("call_sim", to, "+14155550100", ring_timeout, "en-US", "alloy")


@pytest.mark.parametrize(("number", "result", "reason"), [
    ("+14155550161", DialResult.BUSY, None),
    ("+14155550162", DialResult.DECLINED, None),
    ("+14155550163", DialResult.FAILED, "sip_503"),
    ("+442079460000", DialResult.FAILED, "invalid_number"),  # no scenario: 404
])
async def test_scenarios_that_never_answer_map_to_their_dial_results(number, result, reason):
    simulator = await started_simulator(NoModels())
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=simulator.uri, bind_host="127.0.0.1")), NoModels())
    try:
        outcome = await telephony.dial(request(number))
        assert (outcome.result, outcome.reason) == (result, reason)
        assert outcome.line is None
        await asyncio.sleep(0.2)  # the ACK of the final response reaches the simulator
        assert simulator.ua.dialogs == {} and telephony.carrier._ua.dialogs == {}
    finally:
        await telephony.aclose()
        await simulator.aclose()


async def test_no_answer_rings_until_the_caller_cancels():
    simulator = await started_simulator(NoModels())
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=simulator.uri, bind_host="127.0.0.1")), NoModels())
    try:
        outcome = await telephony.dial(request("+14155550160", ring_timeout=1.5))
        assert (outcome.result, outcome.reason) == (DialResult.NO_ANSWER, "ring_timeout")
        for _ in range(50):  # the simulator saw the CANCEL and ended its side (487 ACKed)
            if not simulator._tasks and not simulator.ua.dialogs:
                break
            await asyncio.sleep(0.1)
        assert not simulator._tasks and simulator.ua.dialogs == {}
    finally:
        await telephony.aclose()
        await simulator.aclose()


async def test_silent_line_answers_and_the_callers_bye_ends_it():
    simulator = await started_simulator(NoModels())
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=simulator.uri, bind_host="127.0.0.1")), NoModels())
    try:
        outcome = await telephony.dial(request("+14155550133"))
        assert outcome.result is DialResult.ANSWERED
        line = outcome.line
        assert isinstance(await line.listen(0.5), Silence)
        await line.send_digits("42#")
        await line.hangup()
        callee = simulator.callees[-1]
        assert callee.digits == ["4", "2", "#"]  # RFC 4733 events reached the far end
        for _ in range(50):
            if not simulator._tasks:
                break
            await asyncio.sleep(0.1)
        assert not simulator._tasks and callee.dialog.closed
    finally:
        await telephony.aclose()
        await simulator.aclose()


QUICK_VOICEMAIL = """
numbers:
  "0199": quick_voicemail
scenarios:
  quick_voicemail:
    kind: voicemail
    ring_seconds: 0.2
    voicemail:
      greeting: ""
      hang_up_after_silence_seconds: 1
"""


async def test_the_record_tone_and_the_simulators_hang_up_reach_the_caller(tmp_path):
    # A voicemail box with an empty greeting: the tone, then a hang-up after 1 s of silence (no models needed).
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text(QUICK_VOICEMAIL)
    simulator = await SipSimulator(load_scenarios(scenarios), NoModels(), host="127.0.0.1", port=0).start()
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=simulator.uri, bind_host="127.0.0.1")), NoModels())
    try:
        outcome = await telephony.dial(request("+14155550199"))
        assert outcome.result is DialResult.ANSWERED
        events = [await outcome.line.listen(5) for _ in range(2)]
        assert isinstance(events[0], Beep), events  # the record tone, heard as audio
        assert isinstance(events[1], HangUp), events
        await outcome.line.hangup()
    finally:
        await telephony.aclose()
        await simulator.aclose()


def test_sipp_as_the_caller_completes_a_call_with_the_simulator(tmp_path):
    """Interop: SIPp's built-in UAC dials the silent line, ACKs our 200, sends BYE and gets 200."""
    if SIPP is None:
        message = "sipp is not installed: run `make sipp` (Debian package sip-tester)"
        pytest.fail(message) if IN_CI else pytest.skip(message)

    async def run() -> int:
        simulator = await started_simulator(NoModels())
        try:
            return await sipp_uac_call(simulator.port, "+14155550133", tmp_path, transport="udp")
        finally:
            await simulator.aclose()

    code = asyncio.run(run())
    errors = tmp_path / "errors.log"
    assert code == 0, errors.read_text() if errors.exists() else code


# Whole conversations with the real speech models.


async def run_call(tmp_path: Path, voice, number: str, objective: str, fields: list[dict], **call) -> tuple:
    """Place a call through the real runtime (worker, session, offline agent) to the SIP simulator."""
    book = load_scenarios()
    # The callee waits out our speech models however slowly they run on a loaded machine: these tests are
    # about what is heard and said, not about how fast the CPU was.
    simulator = await SipSimulator(book, voice, host="127.0.0.1", port=0, patience=10).start()
    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path,
                                   poll_seconds=0.05, heartbeat_seconds=0.2)
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=simulator.uri, bind_host="127.0.0.1")), voice,
                                tmp_path / "recordings")
    try:
        account, _ = await new_account(services)
        body = {"to": number, "objective": objective, "fields": fields, **call}
        found = await conduct_call(services, account, telephony, OfflineBrain(), body)
        await simulator.finish_calls(timeout=60)  # the far end transcribes the caller's last words
        return found, simulator.callees
    finally:
        await telephony.aclose()
        await services.aclose()
        await simulator.aclose()


@pytest.mark.voice
async def test_restaurant_conversation_over_sip_extracts_the_fields(tmp_path, voice_factory):
    call, callees = await run_call(
        tmp_path, voice_factory, "+14155550123",
        "Ask whether they have a table for two tonight and how much the tasting menu costs.",
        [{"name": "table_available", "type": "boolean"}, {"name": "tasting_menu_price", "type": "number"}])
    assert call.status.value == "completed", (call.status, call.end_reason, call.turns)
    said = " ".join(t.text.lower() for t in call.turns if t.speaker == "contact")
    assert "copper pot" in said, call.turns  # Sofia's greeting, heard through the STT
    assert call.extracted == {"table_available": True, "tasting_menu_price": 85}, (call.extracted, call.turns)
    heard_by_sofia = " ".join(callees[0].heard).lower()
    assert "table" in heard_by_sofia, callees[0].heard  # the agent's question, heard through her STT
    callee, agent = read_stereo(Path(call.recording_path))
    assert callee.any() and agent.any()
    turns = call.latency["turns"]  # per-turn latency of the agent's replies, measured on the audio line
    assert len(turns) >= 3, call.latency
    for turn in turns:
        assert turn["sttMs"] > 0 and turn["ttsFirstAudioMs"] > 0 and turn["llmFirstTokenMs"] is None, turn
        assert turn["totalMs"] >= turn["endpointingMs"] + turn["sttMs"], turn


@pytest.mark.voice
async def test_voicemail_over_sip_is_detected_and_the_message_left_after_the_tone(tmp_path, voice_factory):
    # The greeting's pause after "Chris Morgan." can close a turn that sounds like a person; on a loaded machine
    # it is heard only after the rest of the greeting has played, and the reply to it must not go out (it
    # answers a stale turn) so that the agent hears the rest, the tone, and leaves the message.
    message = "Hi Chris, this is the assistant from the dental office, please call us back."
    call, callees = await run_call(tmp_path, voice_factory, "+14155550150", "Confirm the appointment.", [],
                                   voicemailMessage=message)
    assert call.status.value == "voicemail", (call.status, call.end_reason, call.turns)
    heard_by_machine = " ".join(callees[0].heard).lower()
    assert "call us back" in heard_by_machine or "dental" in heard_by_machine, (callees[0].heard, call.turns)


CADENCE_SCENARIOS = """
numbers:
  "0198": hello_person
  "0199": long_voicemail
personas:
  hello:
    name: Sam
    organisation: home
    greeting: Hello?
scenarios:
  hello_person:
    kind: persona
    ring_seconds: 0.2
    persona: hello
  long_voicemail:
    kind: voicemail
    ring_seconds: 0.2
    voicemail:
      greeting: >-
        Hi, you've reached Chris Morgan. I can't come to the phone right now, please leave a message after the tone.
"""


@pytest.mark.voice
@pytest.mark.parametrize(("number", "verdict"), [("+14155550198", "human"), ("+14155550199", "machine")])
async def test_the_cadence_of_the_answer_hints_person_or_machine(tmp_path, voice_factory, number, verdict):
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text(CADENCE_SCENARIOS)
    simulator = await SipSimulator(load_scenarios(scenarios), voice_factory, host="127.0.0.1", port=0).start()
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=simulator.uri, bind_host="127.0.0.1")), voice_factory)
    try:
        outcome = await telephony.dial(request(number))
        line = outcome.line
        await line.listen(8)  # the greeting; the detector decides while it plays and just after
        for _ in range(40):
            if line.answering_machine_hint() is not None:
                break
            await asyncio.sleep(0.1)
        assert line.answering_machine_hint() == verdict, line.amd.verdict
        # Decided within ~2.5 s of the greeting's first word (counted from there: when the simulated callee starts
        # speaking after answer depends on how fast the machine renders its voice).
        assert line.amd.verdict.decided_ms - line.amd.speech_started_ms < 3000, line.amd.verdict
        await line.hangup()
    finally:
        await telephony.aclose()
        await simulator.aclose()
