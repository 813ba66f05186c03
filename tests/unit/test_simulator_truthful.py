"""The simulator's more truthful callees, all as scenario data: read-backs checked against the
persona's facts, holds, transfers, spelling requests, multi-level menus, greetings without a tone."""

from __future__ import annotations

import pytest
import yaml

from byourside_server.clock import FakeClock
from byourside_server.telephony.base import Beep, DialRequest, DialResult, HangUp, Line, Silence, Speech
from byourside_server.telephony.simulator import SimulatorTelephony, load_scenarios
from byourside_server.telephony.simulator.readback import answer_readback, canonical
from byourside_server.telephony.simulator.scenarios import Persona, ScenarioError

SCENARIOS = """
personas:
  shop:
    name: Ada
    organisation: Ada's Shop
    greeting: Ada's Shop.
    facts:
      - keywords: [price, cost, kettle]
        answer: The kettle is thirty-nine dollars.
        value: 39
      - keywords: [delivery, deliver]
        answer: Yes we deliver, oh actually no, not any more.
        value: false
      - keywords: [open, opening, time, saturday]
        answer: We open at nine on Saturday.
        value: nine
        correction: No, Saturday we open at nine.
      - keywords: [stock, how many, left]
        hold: Bear with me, I'll check the back.
        hold_seconds: 20
        answer: We have five left.
      - keywords: [refund, return, accounts]
        answer: Let me put you through to accounts.
        transfer_to: accounts
        transfer_seconds: 5
      - keywords: [manager, owner]
        answer: She'll call you back tomorrow, bye now.
        hangs_up: true
  accounts:
    name: Ben
    organisation: Ada's Shop accounts
    greeting: Accounts, Ben speaking.
    facts:
      - keywords: [refund, return, days]
        answer: Refunds take five working days.
  hotel:
    name: Cy
    organisation: Hotel Cy
    greeting: Hotel Cy.
    spelling_request: Could you spell the surname, please?
    spelling: Nakamura
    facts:
      - keywords: [booking, room, check]
        answer: Found it, a double room for two nights.
scenarios:
  shop: {kind: persona, persona: shop}
  hotel: {kind: persona, persona: hotel}
  menu:
    kind: ivr
    ivr:
      menu: For sales, returns, or repairs, press 1. For anything else, press 0.
      options:
        "0": {persona: accounts}
        "1":
          menu:
            menu: For repairs, press 3. For sales, press 4.
            options:
              "3": {persona: shop}
              "4": {persona: accounts}
  quiet_voicemail:
    kind: voicemail
    voicemail: {greeting: "Hi, it's Dee, I'll get back to you.", beep: false, hang_up_after_silence_seconds: 4}
numbers:
  "0170": shop
  "0171": hotel
  "0172": menu
  "0173": quiet_voicemail
"""


@pytest.fixture()
def book(tmp_path):  # noqa: ANN001, ANN201
    path = tmp_path / "extra.yaml"
    path.write_text(SCENARIOS)
    return load_scenarios(path)


async def dial(book, suffix: str) -> Line:  # noqa: ANN001
    request = DialRequest(call_id="c", to=f"+1415555{suffix}", from_number="+14155550999", ring_timeout_seconds=30,
                          language="en-US", voice="alloy")
    outcome = await SimulatorTelephony(book, FakeClock(), time_scale=0.0).dial(request)
    assert outcome.result is DialResult.ANSWERED and outcome.line is not None
    return outcome.line


async def heard(line: Line, timeout: float = 30.0) -> Speech:
    event = await line.listen(timeout)
    assert isinstance(event, Speech), event
    return event


async def test_a_wrong_read_back_is_corrected_and_a_right_one_confirmed(book) -> None:  # noqa: ANN001
    line = await dial(book, "0170")
    await heard(line)
    await line.say("Just to confirm: kettle price, 93. Is that right?")
    assert (await heard(line)).text == "No, that's not right. The kettle is thirty-nine dollars."
    await line.say("Just to confirm: kettle price, 39. Is that right?")
    assert (await heard(line)).text == "Yes, that's right."
    await line.say('Just to confirm: offers delivery, yes; and saturday opening, "ten". Is that right?')
    assert (await heard(line)).text.startswith("No, that's not right. Yes we deliver, oh actually no")
    await line.say('Just to confirm: offers delivery, no; and saturday opening time, "at 9 am". Is that right?')
    assert (await heard(line)).text == "Yes, that's right."
    await line.say('Just to confirm: saturday opening time, "at eight". Is that right?')
    assert (await heard(line)).text == "No, Saturday we open at nine."


def test_a_persona_without_values_never_objects_and_agree_always_agrees() -> None:
    plain = Persona(name="P", organisation="O", greeting="Hi", facts=({"keywords": ["price"], "answer": "Ten."},))
    assert answer_readback(plain, "Just to confirm: price, 99. Is that right?") == "Yes, that's right."
    agreeable = Persona(name="P", organisation="O", greeting="Hi", readback="agree",
                        facts=({"keywords": ["price"], "answer": "Ten.", "value": 10},))
    assert answer_readback(agreeable, "Just to confirm: price, 99. Is that right?") == "Yes, that's right."


def test_only_a_real_read_back_is_answered_as_one() -> None:
    from byourside_server.telephony.simulator.personas import is_readback

    assert is_readback("Just to confirm: price, 85; and table, yes. Is that right?")
    assert is_readback("Sorry, so is that right?")
    assert not is_readback("I'm calling to confirm the booking for Friday. Could you tell me if it is confirmed?")


def test_a_day_said_relative_to_the_call_is_checked_as_a_date() -> None:
    from datetime import datetime, timezone

    from byourside_server.telephony.simulator.readback import item_is_wrong
    from byourside_server.telephony.simulator.scenarios import Fact

    fact = Fact(keywords=("delivery",), answer="We can bring it tomorrow afternoon.", value="tomorrow")
    noon = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)  # March 10 (or 9 or 11) somewhere on Earth
    assert not item_is_wrong(fact, "delivery date, Wednesday, March 11, afternoon", noon)
    assert not item_is_wrong(fact, 'delivery date, "2026-03-11"', noon)
    assert not item_is_wrong(fact, 'delivery date, "tomorrow afternoon"', noon)
    assert item_is_wrong(fact, "delivery date, Saturday, March 14", noon)
    assert item_is_wrong(fact, 'delivery date, "2026-03-20"', noon)


async def test_hold_then_answer_after_the_hold(book) -> None:  # noqa: ANN001
    line = await dial(book, "0170")
    await heard(line)
    await line.say("How many kettles do you have left in stock?")
    hold = await heard(line)
    assert hold.text == "Bear with me, I'll check the back."
    assert isinstance(await line.listen(5), Silence)  # nothing during the hold
    answer = await heard(line)
    assert answer.text == "We have five left." and answer.start_ms - hold.end_ms >= 20_000


async def test_transfer_to_a_colleague_who_greets_and_answers(book) -> None:  # noqa: ANN001
    line = await dial(book, "0170")
    await heard(line)
    await line.say("I'd like to ask about a refund.")
    assert (await heard(line)).text == "Let me put you through to accounts."
    assert (await heard(line)).text == "Accounts, Ben speaking."
    await line.say("How many days does a refund take?")
    assert (await heard(line)).text == "Refunds take five working days."


async def test_a_fact_can_end_the_call(book) -> None:  # noqa: ANN001
    line = await dial(book, "0170")
    await heard(line)
    await line.say("Could I speak to the manager?")
    assert (await heard(line)).text == "She'll call you back tomorrow, bye now."
    assert isinstance(await line.listen(5), HangUp)


async def test_spelling_request_answers_only_once_spelled(book) -> None:  # noqa: ANN001
    line = await dial(book, "0171")
    await heard(line)
    await line.say("Could you check the booking for Mia Nakamura?")
    assert (await heard(line)).text == "Could you spell the surname, please?"
    await line.say("Nakamura.")
    assert (await heard(line)).text == "Sorry, could you spell it for me letter by letter?"
    await line.say("Of course. Nakamura: N, A, K, A, M, U, R, A.")
    assert (await heard(line)).text == "Found it, a double room for two nights."


async def test_multi_level_menu_with_punctuated_labels(book) -> None:  # noqa: ANN001
    line = await dial(book, "0172")
    assert "sales, returns, or repairs" in (await heard(line)).text
    await line.send_digits("1")
    assert (await heard(line)).text == "For repairs, press 3. For sales, press 4."
    await line.send_digits("3")
    assert (await heard(line)).text == "Connecting you now."
    assert (await heard(line)).text == "Ada's Shop."


async def test_voicemail_greeting_without_a_tone(book) -> None:  # noqa: ANN001
    line = await dial(book, "0173")
    assert "get back to you" in (await heard(line)).text
    event = await line.listen(10)
    assert not isinstance(event, Beep)


def test_unknown_transfer_target_and_bad_options_are_reported(tmp_path) -> None:  # noqa: ANN001
    data = yaml.safe_load(SCENARIOS)
    data["personas"]["shop"]["facts"][4]["transfer_to"] = "nobody"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match="transfer_to: unknown persona 'nobody'"):
        load_scenarios(path)
    data = yaml.safe_load(SCENARIOS)
    data["scenarios"]["menu"]["ivr"]["options"]["0"] = {}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match="exactly one of 'persona' or 'menu'"):
        load_scenarios(path)


@pytest.mark.parametrize("a,b", [
    ("Seven PM", "seven"), ("7:00 pm", "7"), ("5-11", "five to eleven"), ("at ten in the morning", "10"),
    ("Wednesday the 15th", "wednesday fifteenth"), ("two thousand four hundred", "2400"),
    ("a hundred and forty-nine", "149"), ("7:30", "seven thirty"), ("eleven till four", "eleven to four"),
])
def test_canonical_values(a: str, b: str) -> None:
    assert canonical(a) == canonical(b)


def test_canonical_keeps_different_values_apart() -> None:
    assert canonical("quarter to eight") != canonical("eight")
    assert canonical("The suit will be ready after four") != canonical("after four")
