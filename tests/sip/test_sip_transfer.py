"""Blind transfer over SIP: the sip provider sends REFER in the call's dialog, the SIP simulator (our own
stack, on loopback) calls the Refer-To number's scenario and reports it in NOTIFYs (RFC 3515/5589). No
speech models: the silent line is the callee."""

from __future__ import annotations

import pytest
from test_sip_dial import NoModels

from byourside_server.telephony.base import DialRequest, DialResult, TransferFailed
from byourside_server.telephony.simulator.over_sip import SipSimulator
from byourside_server.telephony.simulator.scenarios import load_scenarios
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.media import sipfrag_status, transfer_failure
from byourside_server.telephony.sip.provider import SipTelephony

SILENT, RECEPTIONIST, BUSY, NO_ANSWER = "+14155550133", "+14155550100", "+14155550161", "+14155550160"


@pytest.fixture
async def ends():
    simulator = await SipSimulator(load_scenarios(), NoModels(), host="127.0.0.1", port=0).start()
    telephony = SipTelephony(SipConfig(trunk_uri=simulator.uri, bind_host="127.0.0.1"))
    yield simulator, telephony
    await telephony.aclose()
    await simulator.aclose()


async def answered(telephony: SipTelephony):
    outcome = await telephony.dial(DialRequest("call_refer", SILENT, "+14155550100", 10, "en-US", "alloy"))
    assert outcome.result is DialResult.ANSWERED
    return outcome.media


async def test_refer_hands_the_call_to_the_person_and_we_leave(ends):
    simulator, telephony = ends
    media = await answered(telephony)
    assert media.transfer_target(RECEPTIONIST) == f"sip:{RECEPTIONIST}@127.0.0.1:{simulator.port}"
    await media.transfer(RECEPTIONIST)
    assert simulator.transfers == [(SILENT, RECEPTIONIST)]
    assert media.ended.is_set() and not media.ended_by_far_end and media.dialog.closed
    await simulator.finish_calls(10)  # our BYE ended the simulator's side of the call
    assert not simulator._tasks


@pytest.mark.parametrize(("target", "reason"), [(BUSY, "busy"), (NO_ANSWER, "no_answer")])
async def test_a_person_who_does_not_answer_leaves_the_call_ours(ends, target, reason):
    simulator, telephony = ends
    media = await answered(telephony)
    with pytest.raises(TransferFailed) as failed:
        await media.transfer(target)
    assert failed.value.reason == reason
    assert not media.ended.is_set() and simulator.transfers == []
    await media.transfer(RECEPTIONIST)  # the next number on the request's list
    assert simulator.transfers == [(SILENT, RECEPTIONIST)]


async def test_a_far_end_that_refuses_refer_is_an_unsupported_transfer(ends):
    simulator, telephony = ends
    media = await answered(telephony)
    (owner,) = [handler.__self__ for handler in simulator.ua.dialogs.values()]
    far_end = getattr(owner, "dialog", owner)  # the simulator's Dialog (its IncomingCall's until the ACK is in)
    far_end.on_refer = None  # a far end without REFER answers 405
    with pytest.raises(TransferFailed) as failed:
        await media.transfer(RECEPTIONIST)
    assert failed.value.reason == "unsupported" and not media.ended.is_set()
    await media.hangup()


def test_sipfrag_and_failure_mapping():
    assert sipfrag_status(b"SIP/2.0 200 OK") == 200
    assert sipfrag_status(b"SIP/2.0 486 Busy Here\r\n") == 486
    assert sipfrag_status(b"garbage") is None
    assert [transfer_failure(s) for s in (486, 480, 603, 503)] == ["busy", "no_answer", "declined", "sip_503"]
