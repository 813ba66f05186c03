"""The offline brain against every answering simulator scenario, as the runtime drives it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from byourside_server.agent.base import (
    CALLEE_HUNG_UP, NO_RESPONSE, OBJECTIVE_MET, OBJECTIVE_UNREACHABLE, VOICEMAIL_DETECTED, Analysis, ConversationEnd,
)
from byourside_server.agent.offline import NOTES_EXTRACTED, NOTES_REFUSED, NOTES_ROUTE, OfflineBrain
from byourside_server.clock import FakeClock
from byourside_server.domain import CallTask, FieldSpec, Turn
from byourside_server.telephony.base import DialRequest, DialResult, Line, LineEvent, Speech, Spoken
from byourside_server.telephony.simulator import ScenarioBook, load_scenarios

DEMO_OBJECTIVE = "Ask if they have a table for two tonight at 7pm and how much the tasting menu costs"
DEMO_FIELDS = (FieldSpec("table_available", "boolean"), FieldSpec("tasting_menu_price", "number"))


def make_task(objective: str, fields: tuple[FieldSpec, ...] = ()) -> CallTask:
    return CallTask(call_id="call-1", to="+14155550123", from_number="+14155550999", objective=objective,
                    context=None, fields=fields, language="en-US", voice="alloy", account_name="Acme Corp",
                    max_duration_seconds=600)


class RecordingLine(Line):
    """What the runtime wraps around a line: every say and every heard Speech becomes a Turn."""

    def __init__(self, inner: Line) -> None:
        self.inner = inner
        self.turns: list[Turn] = []
        self.digits: list[str] = []
        self.hung_up = False

    async def say(self, text: str) -> Spoken:
        spoken = await self.inner.say(text)
        self.turns.append(Turn("agent", text, spoken.start_ms, spoken.end_ms))
        return spoken

    async def listen(self, timeout_seconds: float) -> LineEvent:
        event = await self.inner.listen(timeout_seconds)
        if isinstance(event, Speech):
            self.turns.append(Turn("contact", event.text, event.start_ms, event.end_ms))
        return event

    async def send_digits(self, digits: str) -> None:
        self.digits.append(digits)
        await self.inner.send_digits(digits)

    async def hangup(self) -> None:
        self.hung_up = True
        await self.inner.hangup()

    def elapsed_ms(self) -> int:
        return self.inner.elapsed_ms()


@dataclass
class Result:
    end: ConversationEnd
    analysis: Analysis
    line: RecordingLine

    def said(self, speaker: str) -> list[str]:
        return [t.text for t in self.line.turns if t.speaker == speaker]


@pytest.fixture(scope="module")
def book() -> ScenarioBook:
    return load_scenarios()


async def call(book: ScenarioBook, suffix: str, objective: str, fields: tuple[FieldSpec, ...] = ()) -> Result:
    from byourside_server.telephony.simulator import SimulatorTelephony

    telephony = SimulatorTelephony(book, FakeClock(), time_scale=0)
    outcome = await telephony.dial(DialRequest("call-1", f"+1415555{suffix}", "+14155550999", 30, "en-US", "alloy"))
    assert outcome.result is DialResult.ANSWERED and outcome.line is not None
    line = RecordingLine(outcome.line)
    brain = OfflineBrain()
    task = make_task(objective, fields)
    end = await brain.converse(task, line)
    analysis = await brain.analyze(task, line.turns, end)
    assert set(analysis.extracted) == {f.name for f in fields}
    assert line.hung_up
    return Result(end, analysis, line)


async def test_demo_call_extracts_table_and_price(book: ScenarioBook) -> None:
    r = await call(book, "0123", DEMO_OBJECTIVE, DEMO_FIELDS)
    assert (r.end.reason, r.end.answered_by) == (OBJECTIVE_MET, "human")
    assert r.analysis.extracted == {"table_available": True, "tasting_menu_price": 85}
    assert type(r.analysis.extracted["tasting_menu_price"]) is int
    assert r.analysis.objective_met is True
    opener = r.said("agent")[0]
    assert opener.startswith("Hi, this is an AI assistant calling on behalf of Acme Corp.")
    assert "I'm calling to ask if you have a table for two tonight at 7pm" in opener
    assert any(t.startswith("Just to confirm: table available, yes; and tasting menu price, 85.") for t in r.said("agent"))
    assert r.analysis.summary.startswith("A person answered. Obtained: table available: yes; and tasting menu price: 85.")
    # Evidence is the callee's answer to the question for the field, never the "Okay, bye!" on the way out.
    table = r.analysis.evidence["table_available"]
    asked = r.line.turns[table["turnIndex"] - 1]
    assert asked.speaker == "agent" and "table" in asked.text.lower()
    assert table["quote"] != "Okay, bye!"


async def test_demo_call_with_field_descriptions(book: ScenarioBook) -> None:
    fields = (FieldSpec("table_available", "boolean", "Whether they have a table for two tonight at 7pm"),
              FieldSpec("tasting_menu_price", "number", "Price of the tasting menu per person, in dollars"))
    r = await call(book, "0123", DEMO_OBJECTIVE, fields)
    assert r.analysis.extracted == {"table_available": True, "tasting_menu_price": 85}
    assert "Could you tell me whether you have a table for two tonight at 7pm?" in r.said("agent")[0]
    assert "Could you tell me the price of the tasting menu per person, in dollars?" in r.said("agent")


async def test_dentist_confirms_the_appointment(book: ScenarioBook) -> None:
    fields = (FieldSpec("appointment_confirmed", "boolean", "Whether Jordan Lee's appointment on Tuesday is confirmed"),
              FieldSpec("cancellation_fee", "number", "The late cancellation fee in dollars"),
              FieldSpec("what_to_bring", "string", "What to bring to the appointment"))
    r = await call(book, "0124", "Confirm Jordan Lee's cleaning appointment on Tuesday at 3:30pm", fields)
    assert r.end.reason == OBJECTIVE_MET
    assert r.analysis.extracted == {"appointment_confirmed": True, "cancellation_fee": 40,
                                    "what_to_bring": "Please bring your insurance card and a photo ID"}


async def test_hardware_store_hours_and_price(book: ScenarioBook) -> None:
    fields = (FieldSpec("saturday_hours", "string", "Their opening hours on Saturday"),
              FieldSpec("drill_price", "number", "The price of the DeWalt cordless drill"))
    r = await call(book, "0125", "Find out when they are open on Saturday and what the DeWalt drill costs", fields)
    assert r.end.reason == OBJECTIVE_MET
    assert r.analysis.extracted == {"saturday_hours": "eight to four",
                                    "drill_price": pytest.approx(149.99)}


async def test_refuser_ends_politely_without_reasking(book: ScenarioBook) -> None:
    fields = (FieldSpec("monthly_rent", "number"), FieldSpec("pets_allowed", "boolean"), FieldSpec("deposit", "number"))
    r = await call(book, "0130", "Ask what the rent is for the two-bedroom flat", fields)
    assert (r.end.reason, r.end.answered_by) == (OBJECTIVE_UNREACHABLE, "human")
    assert r.analysis.extracted == {"monthly_rent": None, "pets_allowed": None, "deposit": None}
    assert r.end.notes[NOTES_REFUSED] == ["monthly_rent", "pets_allowed"]  # two refusals in a row: stop asking
    assert not any("deposit" in t for t in r.said("agent"))
    assert r.said("agent")[-1] == "I understand. Thank you for your time anyway. Goodbye!"
    assert r.analysis.objective_met is False
    assert "declined to share" in r.analysis.summary


async def test_who_is_this_gets_a_second_disclosure(book: ScenarioBook) -> None:
    fields = (FieldSpec("bike_ready", "boolean", "Whether the bike repair is done"), FieldSpec("repair_cost", "number"))
    r = await call(book, "0131", "Ask if the bike repair is done and how much it costs", fields)
    assert r.end.reason == OBJECTIVE_MET
    assert r.analysis.extracted == {"bike_ready": True, "repair_cost": 62.5}
    assert "Sorry, who is this?" in r.said("contact")
    assert r.said("agent")[1].startswith("I'm an AI assistant, calling on behalf of Acme Corp.")


async def test_hang_up_mid_call_keeps_what_was_obtained(book: ScenarioBook) -> None:
    fields = (FieldSpec("ready_day", "string", "The day the car will be ready"),
              FieldSpec("estimate", "number", "The estimate for the bumper repair"))
    r = await call(book, "0132", "Ask when the car will be ready and what the bumper estimate is", fields)
    assert (r.end.reason, r.end.answered_by) == (CALLEE_HUNG_UP, "human")
    assert r.analysis.extracted == {"ready_day": "Thursday", "estimate": None}
    assert r.analysis.objective_met is False
    assert "hung up" in r.analysis.summary


async def test_silent_line_gets_one_hello_then_no_response(book: ScenarioBook) -> None:
    r = await call(book, "0133", DEMO_OBJECTIVE, DEMO_FIELDS)
    assert (r.end.reason, r.end.answered_by) == (NO_RESPONSE, "unknown")
    assert r.said("agent")[0] == "Hello? Can you hear me?"
    assert len(r.said("agent")) == 2  # the hello and the goodbye
    assert r.analysis.objective_met is None
    assert r.analysis.extracted == {"table_available": None, "tasting_menu_price": None}


async def test_voicemail_hangs_up_without_a_message(book: ScenarioBook) -> None:
    r = await call(book, "0150", DEMO_OBJECTIVE, DEMO_FIELDS)
    assert (r.end.reason, r.end.answered_by) == (VOICEMAIL_DETECTED, "voicemail")
    assert r.said("agent") == []
    assert r.analysis.objective_met is None
    assert r.analysis.summary.startswith("A voicemail greeting answered.")


@pytest.mark.parametrize(
    ("objective", "fields", "digit", "extracted"),
    [
        (DEMO_OBJECTIVE, DEMO_FIELDS, "1", {"table_available": True, "tasting_menu_price": 85}),
        ("Find out what time they close on Friday", (FieldSpec("closing_time", "string", "Their closing time"),),
         "2", {"closing_time": "eleven"}),
        ("Ask whether they cater private events for a wedding of sixty guests",
         (FieldSpec("caters_events", "boolean"),), "0", {"caters_events": True}),
    ],
)
async def test_ivr_presses_the_matching_option(book: ScenarioBook, objective: str, fields: tuple[FieldSpec, ...],
                                               digit: str, extracted: dict) -> None:
    r = await call(book, "0140", objective, fields)
    assert r.line.digits == [digit]
    assert (r.end.reason, r.end.answered_by) == (OBJECTIVE_MET, "ivr")
    assert r.end.notes[NOTES_ROUTE] == [f"ivr:{digit}"]
    assert r.analysis.extracted == extracted
    assert r.analysis.objective_met is True
    assert f"pressed {digit} and reached a person" in r.analysis.summary


async def test_screening_hears_who_and_why_then_talks_to_the_person(book: ScenarioBook) -> None:
    fields = (FieldSpec("available_saturday", "boolean", "Whether Dana is free on Saturday June 14th"),
              FieldSpec("day_rate", "number", "Dana's rate for a full day"))
    r = await call(book, "0141", "Ask if Dana is free to photograph a wedding on Saturday June 14th", fields)
    assert (r.end.reason, r.end.answered_by) == (OBJECTIVE_MET, "screening")
    first = r.said("agent")[0]
    assert "AI assistant" in first and "Acme Corp" in first and "photograph a wedding" in first
    assert r.analysis.extracted == {"available_saturday": True, "day_rate": 2000}
    assert "put through to a person" in r.analysis.summary


async def test_default_receptionist_knows_nothing(book: ScenarioBook) -> None:
    r = await call(book, "0177", DEMO_OBJECTIVE, DEMO_FIELDS)
    assert r.end.reason == OBJECTIVE_UNREACHABLE
    assert r.analysis.extracted == {"table_available": None, "tasting_menu_price": None}
    assert r.analysis.objective_met is False
    questions = [t for t in r.said("agent") if "table available?" in t]
    assert len(questions) == 2  # asked, re-asked once, then moved on
    assert not any(t.startswith("Just to confirm") for t in r.said("agent"))


async def test_objective_without_fields_is_met_when_they_respond(book: ScenarioBook) -> None:
    r = await call(book, "0123", "Ask how much the tasting menu costs")
    assert r.end.reason == OBJECTIVE_MET
    assert r.analysis.extracted == {}
    assert "The tasting menu is eighty-five dollars per person.\"" in r.analysis.summary


async def test_objective_without_fields_and_a_refusal_is_unreachable(book: ScenarioBook) -> None:
    r = await call(book, "0130", "Ask what the rent for the flat is")
    assert r.end.reason == OBJECTIVE_UNREACHABLE
    assert r.analysis.objective_met is False


async def test_extracted_values_travel_in_the_notes(book: ScenarioBook) -> None:
    r = await call(book, "0123", DEMO_OBJECTIVE, DEMO_FIELDS)
    assert r.end.notes[NOTES_EXTRACTED] == {"table_available": True, "tasting_menu_price": 85}
