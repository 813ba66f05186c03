"""Every simulator scenario, placed through the real server with the real SDK, reaches its terminal status."""

from __future__ import annotations

import byourside
import pytest

SCENARIOS = [
    # (number, fields, expected status, expected endReason, expected extracted subset)
    ("+14155550123", [{"name": "table_available", "type": "boolean", "description": "whether a table for two is free tonight at 7pm"},
                      {"name": "tasting_menu_price", "type": "number", "description": "the price of the tasting menu per person"}],
     "completed", "objective_met", {"table_available": True, "tasting_menu_price": 85}),
    ("+12125550100", [{"name": "opening_hours"}], "completed", "objective_unreachable", {}),
    ("+14155550130", [{"name": "account_balance", "type": "number"}], "completed", "objective_unreachable", {"account_balance": None}),
    ("+14155550132", [{"name": "opening_hours"}, {"name": "drill_price", "type": "number"}], "completed", "callee_hung_up", {}),
    ("+14155550133", [{"name": "opening_hours"}], "completed", "no_response", {"opening_hours": None}),
    ("+14155550140", [{"name": "table_available", "type": "boolean", "description": "whether a table for two is free tonight"}],
     "completed", "objective_met", {"table_available": True}),
    ("+14155550150", [{"name": "opening_hours"}], "voicemail", "voicemail", {"opening_hours": None}),
    ("+14155550160", [], "no_answer", "no_answer", None),
    ("+14155550161", [], "no_answer", "busy", None),
    ("+14155550162", [], "declined", "declined", None),
    ("+14155550163", [], "failed", "error:carrier_unreachable", None),
]


@pytest.mark.parametrize("number,fields,status,reason,extracted", SCENARIOS, ids=[s[0][-4:] for s in SCENARIOS])
def test_scenario_reaches_terminal_status(client, number, fields, status, reason, extracted):
    created = client.place_call(number, "Find out what I need to know.", fields=fields or None)
    assert created["status"] == "queued"
    call = client.wait_for_call(created["callId"], timeout=60, interval=0.1)
    assert call["status"] == status, call
    assert call["endReason"] == reason
    assert call["endedAt"] is not None
    if status in ("completed", "voicemail"):
        assert call["startedAt"] is not None and call["durationSeconds"] >= 1
        assert call["transcript"] and call["turns"]
        assert call["summary"]
        assert set(call["extracted"]) == {f["name"] for f in fields}
        for key, value in (extracted or {}).items():
            assert call["extracted"][key] == value, (key, call["extracted"])
    else:
        assert call["startedAt"] is None and call["transcript"] is None


def test_voicemail_and_human_calls_report_objective_met(client):
    human = client.wait_for_call(
        client.place_call("+14155550124", "Confirm Jordan Lee's appointment on Tuesday.",
                          fields=[{"name": "appointment_confirmed", "type": "boolean"}])["callId"],
        timeout=60, interval=0.1,
    )
    assert human["status"] == "completed" and human["objectiveMet"] is True
    machine = client.wait_for_call(client.place_call("+14155550150", "Ask for the opening hours.")["callId"],
                                   timeout=60, interval=0.1)
    assert machine["status"] == "voicemail" and machine["objectiveMet"] is None


def test_cancel_a_live_call_through_the_api(server):
    client = byourside.Client(server.new_key(), base_url=server.base_url)
    created = client.place_call("+14155550160", "Ask for the opening hours.")
    try:
        canceled = client.cancel_call(created["callId"])
    except byourside.ByoursideError as refused:  # at time scale 0 it may ring out before the cancel arrives
        assert (refused.status, refused.code) == (409, "call_not_active")
        rang_out = client.wait_for_call(created["callId"], timeout=30, interval=0.1)
        assert (rang_out["status"], rang_out["endReason"]) == ("no_answer", "no_answer"), rang_out
    else:
        assert canceled["callId"] == created["callId"]
    final = client.wait_for_call(created["callId"], timeout=30, interval=0.1)
    # Canceled before or while ringing; at time scale 0 it may also have rung out first.
    assert (final["status"], final["endReason"]) in {("failed", "canceled"), ("no_answer", "no_answer")}
    with pytest.raises(byourside.ByoursideError) as err:
        client.cancel_call(created["callId"])
    assert err.value.status == 409 and err.value.code == "call_not_active"


def test_sdk_error_codes_against_the_real_server(server, client):
    with pytest.raises(byourside.ByoursideError) as err:
        client.place_call("+19001234567", "Call a premium line.")
    assert (err.value.status, err.value.code) == (400, "destination_blocked")
    with pytest.raises(byourside.ByoursideError) as err:
        client.get_call("no such call")
    assert (err.value.status, err.value.code) == (404, "not_found")
    with pytest.raises(byourside.ByoursideError) as err:
        byourside.Client("bys_ak_wrong", base_url=server.base_url).list_calls()
    assert (err.value.status, err.value.code) == (401, "unauthorized")
    assert isinstance(client.list_calls(limit=500), list)
