"""Warm transfer over SIP: an attended transfer (RFC 5589 section 7) against the SIP simulator on loopback.

The sip provider places a second leg to the person through the same trunk, plays the brief on it, then sends
REFER with Replaces in the callee's dialog; the simulator joins the callee with the person, ends the replaced leg
with BYE and reports it in NOTIFYs. A trunk without REFER gets the two legs bridged by us. The tests without the
``voice`` mark need no speech models: the brief is plain audio and the simulator counts the sound each side hears;
the ``voice`` one runs a whole call through the runtime, the person hearing the brief through the STT.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from support import conduct_call, new_account, open_services
from test_sip_dial import NoModels

from byourside_server.agent.offline import OfflineBrain
from byourside_server.telephony.base import DialOutcome, DialRequest, DialResult, TransferFailed
from byourside_server.telephony.simulator.over_sip import SipSimulator, record_tone
from byourside_server.telephony.simulator.scenarios import load_scenarios
from byourside_server.telephony.sip.attended import leg_failure, replaces_uri
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.dialog import Dialog
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.telephony import VoicedTelephony

CALLEE, WANTS_PERSON, PERSON = "+14155550176", "+14155550134", "+14155550177"
BUSY, NO_ANSWER, DECLINE, FAILURE = "+14155550161", "+14155550160", "+14155550162", "+14155550163"
OUR_NUMBER = "+14155550100"

# The callee and the person who takes the transfer answer quickly and say nothing (no speech model needed to
# play them); the line that declines does so sooner than the shipped one.
PERSON_SCENARIO = """
numbers:
  "0176": held
  "0177": person
scenarios:
  held:
    kind: silent
    ring_seconds: 0.2
  person:
    kind: silent
    ring_seconds: 0.2
  decline:
    kind: decline
    ring_seconds: 0.5
"""


def brief_audio(seconds: float = 1.5) -> np.ndarray:
    """Stands in for the brief as the voice engine renders it: a voiced, syllable-paced sound, 8 kHz int16."""
    t = np.arange(int(8000 * seconds)) / 8000
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return (6000 * envelope * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def book(tmp_path: Path):
    scenarios = tmp_path / "scenarios.yaml"
    scenarios.write_text(PERSON_SCENARIO)
    return load_scenarios(scenarios)


@pytest.fixture
async def ends(tmp_path):
    simulator = await SipSimulator(book(tmp_path), NoModels(), host="127.0.0.1", port=0).start()
    telephony = SipTelephony(SipConfig(trunk_uri=simulator.uri, bind_host="127.0.0.1"))
    yield simulator, telephony
    await telephony.aclose()
    await simulator.aclose()


async def answered(telephony: SipTelephony, ring_timeout: float = 10):
    outcome = await telephony.dial(DialRequest("call_warm", CALLEE, OUR_NUMBER, ring_timeout, "en-US", "alloy"))
    assert outcome.result is DialResult.ANSWERED
    return outcome.media


async def until(condition, seconds: float = 20) -> None:
    """Wait for ``condition`` (a safety net for a loaded machine, not a speed requirement)."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    assert condition()


async def test_the_person_hears_the_brief_then_replaces_our_leg(ends):
    simulator, telephony = ends
    media = await answered(telephony)
    audio = brief_audio()
    await media.transfer(PERSON, "Hello, this is the assistant: the caller wants a person.", audio)
    callee, person = simulator.callees
    (join,) = simulator.joins
    assert (join.callee, join.person) == (CALLEE, PERSON)
    assert join.person_heard_ms >= len(audio) // 8 // 2  # the brief reached the person before the join
    assert simulator.transfers == [(CALLEE, PERSON)]
    assert callee.sound_ms == 0  # the callee held in silence meanwhile
    assert media.ended.is_set() and not media.ended_by_far_end and media.dialog.closed and not media.handed_over
    await simulator.finish_calls(10)  # the replaced leg's BYE and our BYE ended both of the simulator's calls
    assert not simulator._tasks and person.dialog.closed and callee.dialog.closed
    await until(lambda: not telephony._ua.dialogs)
    assert not telephony.bridges


@pytest.mark.parametrize(("target", "reason"), [(BUSY, "busy"), (NO_ANSWER, "no_answer"), (DECLINE, "declined"),
                                                (FAILURE, "sip_503")])
async def test_a_person_who_does_not_answer_leaves_the_call_ours(ends, target, reason):
    simulator, telephony = ends
    media = await answered(telephony, ring_timeout=3)  # the person's leg rings as long as the call may
    with pytest.raises(TransferFailed) as failed:
        await media.transfer(target, "the brief", brief_audio())
    assert failed.value.reason == reason
    assert not media.ended.is_set() and simulator.joins == [] and simulator.transfers == []
    await media.transfer(PERSON, "the brief", brief_audio())  # the next number on the request's list
    assert [(j.callee, j.person) for j in simulator.joins] == [(CALLEE, PERSON)]


async def test_the_callee_hanging_up_while_the_person_rings_ends_the_attempt(ends):
    simulator, telephony = ends
    media = await answered(telephony, ring_timeout=60)
    transfer = asyncio.ensure_future(media.transfer(NO_ANSWER, "the brief", brief_audio()))
    await until(lambda: len(simulator._tasks) == 2)  # the person's line is ringing
    await simulator.callees[0].media.hangup()
    with pytest.raises(TransferFailed) as failed:
        await transfer
    assert failed.value.reason == "call_ended"
    await simulator.finish_calls(10)  # the ringing leg was cancelled
    assert not simulator._tasks


async def test_a_trunk_without_refer_gets_the_two_legs_bridged(ends):
    simulator, telephony = ends
    media = await answered(telephony)
    await until(lambda: simulator.callees)  # our ACK reached the simulator
    callee = simulator.callees[0]
    callee.dialog.on_refer = None  # this far end answers REFER with 405
    await media.transfer(PERSON, "the brief", brief_audio())
    person = simulator.callees[1]
    assert simulator.joins == [] and person.sound_ms > 0  # briefed, then bridged by us
    assert media.ended.is_set() and media.handed_over and len(telephony.bridges) == 1
    await media.hangup()  # ours no more: the call goes on
    assert not callee.dialog.closed and not person.dialog.closed

    heard_by_person = person.sound_ms
    callee.media.play(record_tone(ms=1000))  # the callee speaks: the person hears it through our relay
    await until(lambda: person.sound_ms >= heard_by_person + 500)
    person.media.play(record_tone(ms=1000))  # and the other way round
    await until(lambda: callee.sound_ms >= 500)
    await callee.media.send_digits("5")
    await until(lambda: person.digits == ["5"])

    await person.media.hangup()  # the person hangs up: the bridge ends the callee's leg too
    await until(lambda: callee.dialog.closed and not telephony.bridges)
    await simulator.finish_calls(10)
    assert not simulator._tasks
    await until(lambda: not telephony._ua.dialogs)


async def test_closing_the_provider_ends_a_bridged_call(ends):
    simulator, telephony = ends
    media = await answered(telephony)
    await until(lambda: simulator.callees)
    simulator.callees[0].dialog.on_refer = None
    await media.transfer(PERSON, "the brief", brief_audio())
    assert telephony.bridges
    await telephony.aclose()  # the worker going away hangs up both legs
    await simulator.finish_calls(10)
    assert not simulator._tasks and all(c.dialog.closed for c in simulator.callees)


def test_the_replaces_header_names_the_persons_dialog_as_they_know_it():
    dialog = Dialog.__new__(Dialog)
    dialog.call_id, dialog.local, dialog.remote = "a84b4c76e66710@byourside", "<sip:+1@h>;tag=ours", "<sip:+2@h>;tag=theirs"
    assert replaces_uri("sip:+2@trunk", dialog) == (
        "sip:+2@trunk?Replaces=a84b4c76e66710%40byourside%3Bto-tag%3Dtheirs%3Bfrom-tag%3Dours")
    assert [leg_failure(DialOutcome(result, reason=reason)) for result, reason in (
        (DialResult.BUSY, None), (DialResult.NO_ANSWER, "ring_timeout"), (DialResult.DECLINED, None),
        (DialResult.FAILED, "sip_503"), (DialResult.FAILED, "invalid_number"))] == [
        "busy", "no_answer", "declined", "sip_503", "failed"]


@pytest.mark.voice
async def test_a_whole_call_hands_the_callee_to_a_briefed_person(tmp_path, voice_factory):
    """The callee asks for a real person; the offline agent briefs the person in its own voice, then connects."""
    simulator = await SipSimulator(book(tmp_path), voice_factory, host="127.0.0.1", port=0, patience=10).start()
    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path,
                                   poll_seconds=0.05, heartbeat_seconds=0.2)
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=simulator.uri, bind_host="127.0.0.1")),
                                voice_factory, tmp_path / "recordings")
    try:
        account, _ = await new_account(services)
        body = {"to": WANTS_PERSON, "objective": "Ask whether the parcel was delivered.", "fields": [],
                "transferTo": [BUSY, PERSON], "transferMode": "warm"}
        call = await conduct_call(services, account, telephony, OfflineBrain(), body)
        await simulator.finish_calls(timeout=60)  # the person's side transcribes what it heard
    finally:
        await telephony.aclose()
        await services.aclose()
        await simulator.aclose()
    assert (call.status.value, call.end_reason) == ("completed", "transferred"), (call.status, call.end_reason)
    (join,) = simulator.joins
    assert (join.callee, join.person) == (WANTS_PERSON, PERSON) and join.person_heard_ms > 1000
    person = next(c for c in simulator.callees if c.number == PERSON)
    heard = " ".join(person.heard).lower()
    assert "assistant" in heard or "parcel" in heard, person.heard
