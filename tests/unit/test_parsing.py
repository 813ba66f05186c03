"""Typed answers from what a callee said: the number primitives (agent/parsing.py) and the
understanding layer's readers on plain replies (the cases the old first-cue parsers handled)."""

from __future__ import annotations

import pytest

from byourside_server.agent.parsing import words_to_number
from byourside_server.agent.understanding import extract, yes_no
from byourside_server.agent.understanding.values import extract_number
from byourside_server.domain import FieldSpec

VALUE = FieldSpec("value", "number")


def parse_number(text: str) -> int | float | None:
    return extract_number(text, VALUE)


@pytest.mark.parametrize(
    "text",
    [
        "Yes", "yes, we do", "Yeah.", "Yep, sure", "Sure thing!", "We do.", "Absolutely!", "Correct.",
        "That's right", "Of course", "Yes, we have a table for two available tonight at seven.",
        "Let me just check... Yes, we have a table for two available tonight at seven.",
        "No problem!", "We have a table at seven.", "Yes, sorry for the wait.", "Good question! Yes.",
        "I think so.", "Right.", "Yes, I'm free that Saturday.",
    ],
)
def test_boolean_yes(text: str) -> None:
    assert yes_no(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "No", "no.", "Nope", "We don't.", "we don't", "Sorry, we don't.", "Unfortunately we're fully booked tonight.",
        "Not tonight, sorry.", "Absolutely not.", "Of course not!", "I'm afraid not.", "We have no tables left.",
        "Sorry, we're full.", "Never.", "It isn't.", "We're closed on Sundays.", "No, I'm not free that day.",
        "Nah", "We can't do that.",
    ],
)
def test_boolean_no(text: str) -> None:
    assert yes_no(text) is False


@pytest.mark.parametrize(
    "text",
    [
        "not sure", "I'm not sure.", "I don't know", "No idea, sorry.", "Maybe.", "Let me check.", "", "Hmm...",
        "Sorry, I'm not allowed to give out that information over the phone.", "I can't share that.",
        "The tasting menu is eighty-five dollars per person.", "Look, I've got a customer waiting, I have to go.",
        "It depends on the day.",
    ],
)
def test_boolean_undecided(text: str) -> None:
    assert yes_no(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("eighty-five dollars per person", 85),
        ("The tasting menu is eighty-five dollars per person.", 85),
        ("Good question! The tasting menu is eighty-five dollars per person.", 85),
        ("$85", 85),
        ("85", 85),
        ("It's 85 dollars.", 85),
        ("$1,250.50", 1250.5),
        ("1,250", 1250),
        ("12.5", 12.5),
        ("85.00", 85),
        # Two spoken groups side by side are read as a price.
        ("twelve fifty", 12.5),
        ("The repair came to sixty-two fifty.", 62.5),
        ("forty-nine ninety-nine", 49.99),
        ("twelve oh five", 12.05),
        ("Keys are two fifty each.", 2.5),
        ("twelve hundred fifty", 1250),
        ("two hundred and five", 205),
        ("a hundred", 100),
        ("one thousand two hundred and fifty", 1250),
        ("a dozen", 12),
        ("two dozen", 24),
        ("twelve point five", 12.5),
        ("The drill is a hundred and forty-nine dollars and ninety-nine cents.", 149.99),
        ("fifty cents", 0.5),
        # Money beats other figures in the same reply.
        ("If you cancel with less than twenty-four hours' notice there's a forty dollar fee.", 40),
        ("For two people at 7pm the menu is $85.", 85),
        ("Interior paint is $34.99 a gallon.", 34.99),
        ("My rate is two thousand dollars for a full day.", 2000),
        ("about twenty people", 20),
        ("seven", 7),
        ("zero", 0),
        ("thirteen", 13),
        ("2 million", 2_000_000),
        ("four one five", 415),
    ],
)
def test_numbers(text: str, expected: float) -> None:
    value = parse_number(text)
    assert value == pytest.approx(expected)
    assert type(value) is (int if float(expected).is_integer() else float)


@pytest.mark.parametrize("text", ["no idea", "", "a lot", "not sure", "we're open late", "Hmm, I'm not sure about that."])
def test_numbers_absent(text: str) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("eighty-five", 85), ("eighty five", 85), ("ninety-nine", 99), ("two hundred and five", 205),
        ("nineteen hundred", 1900), ("twenty five hundred", 2500), ("a dozen", 12), ("twelve fifty", 12.5),
        ("one hundred forty-nine ninety-nine", 149.99), ("three thousand", 3000), ("eleven", 11),
        ("hello", None), ("", None), ("oh", None), ("point", None), ("five apples", None),
    ],
)
def test_words_to_number(text: str, expected: float | None) -> None:
    assert words_to_number(text) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("field", "text", "expected"),
    [
        (FieldSpec("appointment_time", "string", "The appointment time"), "It's at three thirty on Tuesday.",
         "three thirty on Tuesday"),
        (FieldSpec("opening_hours", "string", "When they are open"),
         "Let me just check... We're open from five to eleven, Tuesday to Sunday.", "five to eleven"),
        (FieldSpec("address", "string"), "Address: 210 Harbor Street.", "210 Harbor Street"),
        (FieldSpec("dress_code", "string"), "  Smart casual.  ", "Smart casual"),
        (FieldSpec("opening_time", "string", "What time it opens"), "It opens at 9:30.", "9:30"),
        (FieldSpec("doctor", "string", "Which doctor"), "Good question! That would be Dr. Patel.", "Dr. Patel"),
        (FieldSpec("dress_code", "string"), "Okay.", None),
        (FieldSpec("dress_code", "string"), "", None),
    ],
)
def test_strings(field: FieldSpec, text: str, expected: str | None) -> None:
    assert extract(field, text) == expected
