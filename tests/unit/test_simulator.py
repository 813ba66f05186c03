"""The phone simulator: number plan, dial results, virtual time and each scenario's behaviour."""

from __future__ import annotations

import asyncio
import time

import pytest

from byourside_server.clock import FakeClock, SystemClock
from byourside_server.telephony.base import (
    Beep, CalleeHungUp, DialRequest, DialResult, HangUp, Line, Silence, Speech,
)
from byourside_server.telephony.simulator import ScenarioBook, SimulatedLine, SimulatorTelephony, load_scenarios
from byourside_server.telephony.simulator.provider import speech_ms


@pytest.fixture(scope="module")
def book() -> ScenarioBook:
    return load_scenarios()


def request(to: str, ring_timeout: float = 30.0) -> DialRequest:
    return DialRequest(call_id="call-1", to=to, from_number="+14155550999", ring_timeout_seconds=ring_timeout,
                       language="en-US", voice="alloy")


async def answer(book: ScenarioBook, suffix: str, clock: FakeClock | None = None, scale: float = 0.0) -> Line:
    outcome = await SimulatorTelephony(book, clock or FakeClock(), time_scale=scale).dial(request(f"+1415555{suffix}"))
    assert outcome.result is DialResult.ANSWERED and outcome.line is not None
    return outcome.line


async def speech(line: Line, timeout: float = 30.0) -> str:
    event = await line.listen(timeout)
    assert isinstance(event, Speech), event
    return event.text


# --- number plan and dial results ----------------------------------------------

DIAL_TABLE = [
    ("0100", DialResult.ANSWERED, None),
    ("0123", DialResult.ANSWERED, None),
    ("0124", DialResult.ANSWERED, None),
    ("0125", DialResult.ANSWERED, None),
    ("0130", DialResult.ANSWERED, None),
    ("0131", DialResult.ANSWERED, None),
    ("0132", DialResult.ANSWERED, None),
    ("0133", DialResult.ANSWERED, None),
    ("0140", DialResult.ANSWERED, None),
    ("0141", DialResult.ANSWERED, None),
    ("0150", DialResult.ANSWERED, None),
    ("0160", DialResult.NO_ANSWER, "ring_timeout"),
    ("0161", DialResult.BUSY, "busy"),
    ("0162", DialResult.DECLINED, "callee_declined"),
    ("0163", DialResult.FAILED, "carrier_unreachable"),
    ("0177", DialResult.ANSWERED, None),  # unmapped: the default receptionist
]


@pytest.mark.parametrize(("suffix", "result", "reason"), DIAL_TABLE)
async def test_each_shipped_number_dials_to_its_result(book: ScenarioBook, suffix: str, result: DialResult,
                                                       reason: str | None) -> None:
    outcome = await SimulatorTelephony(book, FakeClock(), time_scale=0).dial(request(f"+1415555{suffix}"))
    assert outcome.result is result
    assert outcome.reason == reason
    assert (outcome.line is not None) == (result is DialResult.ANSWERED)


def test_every_shipped_scenario_has_a_number(book: ScenarioBook) -> None:
    assert set(book.suffixes.values()) == set(book.scenarios)
    assert book.default == "receptionist"


def test_any_area_code_plays_the_same_scenario(book: ScenarioBook) -> None:
    assert book.name_for("+14155550123") == book.name_for("+12125550123") == "copper_pot"
    assert book.for_number("+19995550123") is book.for_number("+14155550123")
    assert book.name_for("+14155550199") == "receptionist"


@pytest.mark.parametrize("number", ["+14155550200", "+11235550123", "+441234567890", "+14155551234", "4155550123"])
async def test_numbers_outside_the_simulator_range_fail(book: ScenarioBook, number: str) -> None:
    assert book.for_number(number) is None
    outcome = await SimulatorTelephony(book, FakeClock(), time_scale=0).dial(request(number))
    assert (outcome.result, outcome.reason, outcome.line) == (DialResult.FAILED, "simulator_unknown_number", None)


# --- virtual time ----------------------------------------------------------------


@pytest.mark.parametrize(("scale", "waited"), [(1.0, 4.0), (0.5, 2.0), (0.0, 0.0)])
async def test_ringing_waits_scenario_seconds_times_scale(book: ScenarioBook, scale: float, waited: float) -> None:
    clock = FakeClock()
    await answer(book, "0123", clock, scale)
    assert clock.monotonic() == pytest.approx(waited)


async def test_no_answer_rings_the_full_ring_timeout(book: ScenarioBook) -> None:
    clock = FakeClock()
    outcome = await SimulatorTelephony(book, clock).dial(request("+14155550160", ring_timeout=25))
    assert outcome.result is DialResult.NO_ANSWER
    assert clock.monotonic() == pytest.approx(25)


async def test_a_callee_slower_than_the_ring_timeout_is_no_answer(book: ScenarioBook) -> None:
    clock = FakeClock()
    outcome = await SimulatorTelephony(book, clock).dial(request("+14155550124", ring_timeout=3))  # rings 5 s
    assert (outcome.result, clock.monotonic()) == (DialResult.NO_ANSWER, pytest.approx(3))


async def test_line_times_are_virtual_and_clock_waits_are_scaled(book: ScenarioBook) -> None:
    clock = FakeClock()
    line = await answer(book, "0123", clock, scale=0.1)
    rung = clock.monotonic()
    greeting = await line.listen(5)
    assert isinstance(greeting, Speech)
    assert greeting.start_ms == 500  # picks up, then speaks half a second later
    assert greeting.end_ms == 500 + speech_ms(greeting.text)
    assert line.elapsed_ms() == greeting.end_ms
    spoken = await line.say("How much is the tasting menu?")  # six words at 2.7 words a second
    assert (spoken.start_ms, spoken.end_ms) == (greeting.end_ms, greeting.end_ms + 2222)
    assert clock.monotonic() - rung == pytest.approx(line.elapsed_ms() / 1000 * 0.1)
    reply = await line.listen(5)
    assert isinstance(reply, Speech) and reply.start_ms == spoken.end_ms + 400  # thinking pause


async def test_silence_lasts_the_listen_timeout(book: ScenarioBook) -> None:
    line = await answer(book, "0133")
    assert await line.listen(5) == Silence(start_ms=0, end_ms=5000)
    assert await line.listen(2.5) == Silence(start_ms=5000, end_ms=7500)
    assert line.elapsed_ms() == 7500


async def test_cancelling_dial_while_ringing_just_stops(book: ScenarioBook) -> None:
    telephony = SimulatorTelephony(book, SystemClock(), time_scale=1.0)  # real seconds: ringing takes 4 s
    started = time.monotonic()
    task = asyncio.create_task(telephony.dial(request("+14155550123")))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0


def test_negative_time_scale_is_refused(book: ScenarioBook) -> None:
    with pytest.raises(ValueError):
        SimulatorTelephony(book, FakeClock(), time_scale=-1)


# --- personas ----------------------------------------------------------------------


async def test_restaurant_answers_fact_questions(book: ScenarioBook) -> None:
    line = await answer(book, "0123")
    assert "The Copper Pot" in await speech(line)
    await line.say("Do you have a table for two tonight at seven?")
    assert "Yes, we have a table for two available tonight at seven." in await speech(line)
    await line.say("And how much is the tasting menu?")
    assert "eighty-five dollars per person" in await speech(line)
    await line.say("Is there parking nearby?")
    assert "parking" in await speech(line)
    await line.say("Do you sell bicycles?")
    assert await speech(line) == "Oh, I'm not sure about that one, sorry."


async def test_persona_confirms_a_read_back_and_says_goodbye_then_hangs_up(book: ScenarioBook) -> None:
    line = await answer(book, "0124")
    await speech(line)
    await line.say("Just to confirm: appointment confirmed, yes. Is that right?")
    assert await speech(line) == "Yes, that's right."
    await line.say("Thank you so much. Goodbye!")
    assert await speech(line) == "Okay, bye!"
    hang = await line.listen(5)
    assert isinstance(hang, HangUp)
    assert isinstance(await line.listen(5), HangUp)
    with pytest.raises(CalleeHungUp):
        await line.say("Hello?")


async def test_terse_persona_answers_in_one_sentence(book: ScenarioBook) -> None:
    line = await answer(book, "0125")
    await speech(line)
    await line.say("When are you open on Saturday?")
    assert await speech(line) == "Seven to six on weekdays, eight to four on Saturday."


async def test_refusing_persona_refuses_questions(book: ScenarioBook) -> None:
    line = await answer(book, "0130")
    await speech(line)
    await line.say("What is the monthly rent for the two-bedroom?")
    assert "not allowed" in await speech(line)


async def test_persona_that_asks_who_first(book: ScenarioBook) -> None:
    line = await answer(book, "0131")
    assert await speech(line) == "Hello?"
    await line.say("Hi, is my bike ready?")
    assert await speech(line) == "Sorry, who is this?"
    await line.say("This is an AI assistant calling for Jordan. Is the bike ready?")
    assert (await speech(line)).startswith("Yes, the bike is ready")


async def test_persona_hangs_up_mid_call(book: ScenarioBook) -> None:
    line = await answer(book, "0132")
    await speech(line)
    await line.say("When will the car be ready?")
    assert await speech(line) == "Should be ready on Thursday."
    await line.say("And what is the estimate?")
    assert "I have to go" in await speech(line)
    with pytest.raises(CalleeHungUp) as raised:
        await line.say("Sorry, one more thing")
    assert raised.value.at_ms <= line.elapsed_ms()
    assert isinstance(await line.listen(1), HangUp)


async def test_persona_nudges_after_ten_quiet_seconds(book: ScenarioBook) -> None:
    line = await answer(book, "0100")
    greeting = await line.listen(5)
    assert isinstance(greeting, Speech)
    assert isinstance(await line.listen(5), Silence)
    nudge = await line.listen(10)
    assert isinstance(nudge, Speech) and nudge.text == "Hello? Are you still there?"
    assert nudge.start_ms == greeting.end_ms + 10_000


async def test_our_hangup_closes_the_line(book: ScenarioBook) -> None:
    line = await answer(book, "0123")
    await line.hangup()
    await line.hangup()  # idempotent
    assert isinstance(await line.listen(5), HangUp)
    with pytest.raises(CalleeHungUp):
        await line.say("Hello?")
    with pytest.raises(CalleeHungUp):
        await line.send_digits("1")


# --- machines -----------------------------------------------------------------------


async def test_voicemail_greets_beeps_and_hangs_up_on_silence(book: ScenarioBook) -> None:
    line = await answer(book, "0150")
    assert "leave a message" in await speech(line)
    beep = await line.listen(5)
    assert isinstance(beep, Beep)
    hang = await line.listen(30)
    assert isinstance(hang, HangUp) and hang.at_ms == beep.at_ms + 500 + 10_000


async def test_ivr_routes_on_digits(book: ScenarioBook) -> None:
    line = await answer(book, "0140")
    assert "press 1" in await speech(line)
    await line.send_digits("1")
    assert await speech(line) == "Connecting you now."
    assert "Sofia" in await speech(line)
    await line.say("How much is the tasting menu?")
    assert "eighty-five" in await speech(line)


async def test_ivr_option_zero_reaches_another_persona(book: ScenarioBook) -> None:
    line = await answer(book, "0140")
    await speech(line)
    await line.send_digits("0")
    await speech(line)
    assert "Marco" in await speech(line)


async def test_ivr_key_press_interrupts_the_menu(book: ScenarioBook) -> None:
    line = await answer(book, "0140")
    await line.send_digits("2")  # before hearing the menu
    assert await speech(line) == "Connecting you now."


async def test_ivr_invalid_digit_repeats_the_menu(book: ScenarioBook) -> None:
    line = await answer(book, "0140")
    await speech(line)
    await line.send_digits("7")
    assert await speech(line) == "Sorry, that is not a valid option."
    assert "For reservations, press 1" in await speech(line)


async def test_ivr_without_a_selection_repeats_then_hangs_up(book: ScenarioBook) -> None:
    line = await answer(book, "0140")
    await speech(line)
    assert "press 1" in await speech(line)  # repeated after six quiet seconds
    assert "press 1" in await speech(line)
    assert "Goodbye" in await speech(line)
    assert isinstance(await line.listen(5), HangUp)


async def test_screening_connects_after_a_real_introduction(book: ScenarioBook) -> None:
    line = await answer(book, "0141")
    assert "screening" in await speech(line)
    await line.say("Hi")
    assert "say your name" in await speech(line)
    await line.say("This is an AI assistant calling for Acme about wedding photography.")
    assert "stay on the line" in await speech(line)
    assert await speech(line) == "Hi, this is Dana."


async def test_screening_rejects_a_caller_who_will_not_say(book: ScenarioBook) -> None:
    line = await answer(book, "0141")
    await speech(line)
    await line.say("Hi")
    await speech(line)
    await line.say("Hello?")
    assert "can't connect" in await speech(line)
    assert isinstance(await line.listen(5), HangUp)


async def test_simulated_line_is_a_line(book: ScenarioBook) -> None:
    assert isinstance(await answer(book, "0100"), SimulatedLine)
