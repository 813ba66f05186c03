"""answeredBy (ext): who answered a call, stored with the evidence and on the wire, through the real runtime.

The in-process simulator knows what it put on the line (a person, a voicemail, a phone menu); a call
that was never answered has none. The rule that weighs a line's verdict against the brain's own
word is covered on its own in tests/unit/test_answered_by.py.
"""

from __future__ import annotations

import pytest

from byourside_server.agent.offline import OfflineBrain
from byourside_server.clock import SystemClock
from byourside_server.telephony.simulator.provider import SimulatorTelephony
from byourside_server.telephony.simulator.scenarios import load_scenarios
from byourside_server.wire import call_to_json
from support import conduct_call, new_account


@pytest.mark.parametrize(("to", "status", "answered_by", "scenario"), [
    ("+14155550123", "completed", "human", "persona"),
    ("+14155550150", "voicemail", "machine", "voicemail"),
    ("+14155550140", "completed", "ivr", "ivr"),
    ("+14155550141", "completed", "machine", "screening"),
])
async def test_the_simulator_says_who_answered(services, to, status, answered_by, scenario):
    account, _ = await new_account(services)
    telephony = SimulatorTelephony(load_scenarios(), SystemClock(), time_scale=0)
    call = await conduct_call(services, account, telephony, OfflineBrain(),
                              {"to": to, "objective": "Ask whether they are open on Saturday."})
    shown = call_to_json(call)
    assert shown["status"] == status
    assert shown["answeredBy"] == answered_by
    assert shown["answeredByEvidence"] == {"source": "simulator", "scenario": scenario}


async def test_a_call_never_answered_has_no_answer_verdict(services):
    account, _ = await new_account(services)
    telephony = SimulatorTelephony(load_scenarios(), SystemClock(), time_scale=0)
    call = await conduct_call(services, account, telephony, OfflineBrain(),
                              {"to": "+14155550161", "objective": "Ask whether they are open on Saturday."})
    shown = call_to_json(call)
    assert shown["status"] == "no_answer"
    assert shown["answeredBy"] is None and shown["answeredByEvidence"] is None
