"""What the offline agent says and what it recognises (agent/phrases.py)."""

from __future__ import annotations

import pytest

from byourside_server.agent import phrases
from byourside_server.domain import FieldSpec

MENU = "Thank you for calling The Copper Pot. For reservations, press 1. For opening hours, press 2. For anything else, press 0."


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        ("Ask if they have a table for two tonight at 7pm and how much the tasting menu costs",
         "I'm calling to ask if you have a table for two tonight at 7pm and how much the tasting menu costs."),
        ("Please confirm their opening hours.", "I'm calling to confirm your opening hours."),
        ("Call the Copper Pot and ask about parking", "I'm calling to ask about parking."),
        ("Find out the price. Be polite and brief.", "I'm calling to find out the price."),
        ("Table for two tonight", "I'm calling about this: Table for two tonight."),
        ("Confirm Jordan Lee's appointment on Tuesday!", "I'm calling to confirm Jordan Lee's appointment on Tuesday."),
    ],
)
def test_purpose(objective: str, expected: str) -> None:
    assert phrases.purpose(objective) == expected


@pytest.mark.parametrize(
    ("name", "words"),
    [("table_available", "table available"), ("tastingMenuPrice", "tasting menu price"), ("opening-hours", "opening hours"),
     ("price", "price"), ("priceUSD2", "price usd2")],
)
def test_field_words(name: str, words: str) -> None:
    assert phrases.field_words(name) == words


@pytest.mark.parametrize(
    ("field", "question"),
    [
        (FieldSpec("table_available", "boolean"), "Quick yes or no: table available?"),
        (FieldSpec("tasting_menu_price", "number"), "Could you tell me the tasting menu price?"),
        (FieldSpec("closing_time"), "Could you tell me the closing time?"),
        (FieldSpec("t", "boolean", "Whether they have a table for two tonight at 7pm"),
         "Could you tell me whether you have a table for two tonight at 7pm?"),
        (FieldSpec("p", "number", "Price of the tasting menu per person."),
         "Could you tell me the price of the tasting menu per person?"),
        (FieldSpec("c", "string", "What time do they close?"), "What time do you close?"),
        (FieldSpec("a", "boolean", "Table for two available at 7pm"), "Quick yes or no: table for two available at 7pm?"),
        (FieldSpec("u", "number", "USD price of the menu"), "Could you tell me the USD price of the menu?"),
    ],
)
def test_question_for(field: FieldSpec, question: str) -> None:
    assert phrases.question_for(field) == question


def test_confirmation_reads_values_back() -> None:
    assert phrases.confirmation([("table_available", True), ("tasting_menu_price", 85)]) == (
        "Just to confirm: table available, yes; and tasting menu price, 85. Is that right?")
    assert phrases.confirmation([("dress_code", "smart casual")]) == (
        'Just to confirm: dress code, "smart casual". Is that right?')


def test_a_date_is_read_back_in_words() -> None:
    assert phrases.confirmation([("delivery_date", "2026-12-03 morning")]) == (
        "Just to confirm: delivery date, Thursday, December 3, morning. Is that right?")
    assert phrases.format_value("2026-12-03") == '"2026-12-03"'  # the summary keeps the date as stored
    assert phrases.spoken_date("2026-02-30") is None and phrases.spoken_date("next week") is None


@pytest.mark.parametrize(("value", "text"), [(True, "yes"), (False, "no"), (1250, "1,250"), (149.99, "149.99"),
                                             (12.5, "12.5"), ("x", '"x"')])
def test_format_value(value: object, text: str) -> None:
    assert phrases.format_value(value) == text


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Hi, you've reached Chris Morgan. I can't come to the phone right now, please leave a message after the tone.",
         "voicemail"),
        ("The person you are calling is not available. Please record your message after the beep.", "voicemail"),
        ("Leave a message after the tone, or press 0 for the operator.", "voicemail"),
        (MENU, "ivr"),
        ("To leave a message press 1, for sales press 2.", "ivr"),
        ("Please press 1 to continue.", "ivr"),
        ("Hi, the person you're calling is using a call screening service. Please say your name and the reason for "
         "your call.", "screening"),
        ("Please state your name after the tone.", "screening"),
        ("Please hold while I connect you.", "hold"),
        ("Thank you. Please stay on the line.", "hold"),
        ("Good evening, The Copper Pot, this is Sofia speaking. How can I help you?", "human"),
        ("Hello, who's calling?", "human"),
        ("Hello?", "human"),
    ],
)
def test_classify_answer(text: str, kind: str) -> None:
    assert phrases.classify_answer(text) == kind


def test_ivr_options() -> None:
    assert phrases.ivr_options(MENU) == [("1", "reservations"), ("2", "opening hours"), ("0", "anything else")]
    assert phrases.ivr_options("Press one for sales, press two for service.") == [("1", "sales"), ("2", "service")]
    assert phrases.ivr_options("To repeat these options, press star.") == [("*", "repeat these options")]
    assert phrases.ivr_options("Hello, how can I help?") == []


@pytest.mark.parametrize(
    ("topic", "digit"),
    [
        ("Ask if they have a table for two tonight at 7pm", "1"),
        ("Book a table for Friday", "1"),
        ("Find out what time they close on Sunday", "2"),
        ("Ask about their opening hours", "2"),
        ("Ask whether they cater a wedding", "0"),
    ],
)
def test_choose_ivr_digit(topic: str, digit: str) -> None:
    assert phrases.choose_ivr_digit(phrases.ivr_options(MENU), topic) == digit


def test_choose_ivr_digit_falls_back_to_the_operator_then_zero() -> None:
    options = [("1", "billing"), ("2", "sales"), ("9", "an operator")]
    assert phrases.choose_ivr_digit(options, "Question about my invoice") == "1"
    assert phrases.choose_ivr_digit(options, "Ask about parking") == "9"
    assert phrases.choose_ivr_digit([("1", "billing")], "Ask about parking") == "0"


@pytest.mark.parametrize(
    ("text", "who", "refusal", "unknown", "hold"),
    [
        ("Sorry, who is this?", True, False, True, False),
        ("Who am I speaking with?", True, False, True, False),
        ("I'm not allowed to share that.", False, True, False, False),
        ("No comment.", False, True, False, False),
        ("Hmm, I'm not sure about that.", False, False, True, False),
        ("No idea, sorry.", False, False, True, False),
        ("Let me check. One moment.", False, False, False, True),
        ("Let me check... Yes, we have a table.", False, False, False, False),
        ("Yes, we have a table.", False, False, False, False),
        ("Dogs are not allowed on the patio.", False, False, False, False),
    ],
)
def test_recognisers(text: str, who: bool, refusal: bool, unknown: bool, hold: bool) -> None:
    assert (phrases.is_who_is_this(text), phrases.is_refusal(text), phrases.is_unknown(text), phrases.is_hold(text)) == (
        who, refusal, unknown, hold)


@pytest.mark.parametrize(
    "menu",
    [
        "For reservations press 1 for opening hours press 2 for anything else press 0",
        "For reservations, press 1. Press 2 for opening hours. For anything else, press 0.",
        "Press 1 for reservations, press 2 for opening hours, press 0 for anything else.",
    ],
)
def test_ivr_options_in_either_style(menu: str) -> None:
    assert phrases.ivr_options(menu) == [("1", "reservations"), ("2", "opening hours"), ("0", "anything else")]


@pytest.mark.parametrize("greeting", [
    "Hey, it's Jamie. I can't get to my phone right now, so try me again later or drop me a text.",
    "You've reached the Hendersons. We're not in right now, but say who you are and we'll ring you back.",
    "Thanks for calling Cobalt Roofing. Our office is closed for the day.",
    "Hola, has llamado a Carmen. Ahora no puedo atender, deja tu mensaje después de la señal.",
])
def test_voicemail_greetings_without_the_usual_words(greeting: str) -> None:
    assert phrases.classify_answer(greeting) == "voicemail"


@pytest.mark.parametrize("greeting", [
    "Good evening, The Copper Pot, this is Sofia speaking. How can I help you?", "Hello?", "Yeah?",
    "Alvarez Plumbing, Dee speaking.",
])
def test_people_answering_are_not_voicemail(greeting: str) -> None:
    assert phrases.classify_answer(greeting) == "human"


def test_menu_labels_may_contain_commas() -> None:
    menu = "For billing, insurance, or payments, press 1. For appointments, prescriptions, or results, press 2."
    assert phrases.ivr_options(menu) == [("1", "billing, insurance, or payments"),
                                         ("2", "appointments, prescriptions, or results")]
    assert phrases.choose_ivr_digit(phrases.ivr_options(menu), "Reschedule my appointment") == "2"


def test_menu_options_said_as_if_you_are_and_an_invalid_choice() -> None:
    menu = ("If you are a new customer, press 1. If you're calling about an existing order, "
            "a return, or a refund, press 2.")
    assert phrases.ivr_options(menu) == [
        ("1", "you are a new customer"), ("2", "you're calling about an existing order, a return, or a refund")]
    assert phrases.choose_ivr_digit(phrases.ivr_options(menu), "ask about a refund for order 12") == "2"
    assert phrases.classify_answer("I'm sorry, that's not a valid selection.") == "ivr"
