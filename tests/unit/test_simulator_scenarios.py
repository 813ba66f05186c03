"""Loading scenario files: the shipped book, operator overrides and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from byourside_server.clock import FakeClock
from byourside_server.telephony.base import DialRequest, DialResult, Speech
from byourside_server.telephony.simulator import ScenarioError, SimulatorTelephony, load_scenarios
from byourside_server.telephony.simulator.scenarios import Persona

OPERATOR_FILE = """
default: concierge
personas:
  copper_pot:            # replaces the shipped persona of the same name
    name: Sofia
    organisation: The Copper Pot
    greeting: Copper Pot, Sofia speaking.
    facts:
      - keywords: [tasting menu, price]
        answer: The tasting menu is ninety dollars per person.
scenarios:
  concierge:
    kind: persona
    ring_seconds: 2
    persona:               # inline persona
      name: Lee
      organisation: Hotel Aurora
      greeting: Hotel Aurora concierge, Lee speaking.
  london_office:
    kind: persona
    persona: dentist       # a shipped persona by name
numbers:
  "0123": concierge
  "+442079460000": london_office
  "+14155550124": concierge
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenarios.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_operator_file_merges_over_the_shipped_book(tmp_path: Path) -> None:
    book = load_scenarios(write(tmp_path, OPERATOR_FILE))
    assert book.name_for("+14155550123") == "concierge"  # suffix remapped
    assert book.name_for("+442079460000") == "london_office"  # exact number outside the range
    assert book.name_for("+14155550124") == "concierge"  # exact beats the shipped suffix
    assert book.name_for("+12125550124") == "dentist"  # other area codes keep the suffix
    assert book.name_for("+14155550177") == "concierge"  # new default
    assert book.name_for("+14155550150") == "voicemail"  # untouched shipped entries stay
    london = book.for_number("+442079460000")
    assert london is not None and isinstance(london.persona, Persona) and london.persona.name == "Maria"
    ivr = book.scenarios["ivr"].ivr
    assert ivr is not None
    replaced = ivr.options["1"].persona
    assert isinstance(replaced, Persona) and replaced.greeting == "Copper Pot, Sofia speaking."


async def test_an_exact_operator_number_dials(tmp_path: Path) -> None:
    book = load_scenarios(write(tmp_path, OPERATOR_FILE))
    telephony = SimulatorTelephony(book, FakeClock(), time_scale=0)
    outcome = await telephony.dial(DialRequest("c", "+442079460000", "+14155550999", 30, "en-GB", "alloy"))
    assert outcome.result is DialResult.ANSWERED and outcome.line is not None
    greeting = await outcome.line.listen(5)
    assert isinstance(greeting, Speech) and "Bright Smile Dental" in greeting.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scenarios: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping"),
        ("scenarios:\n  x:\n    kind: teleport\n", "scenarios.x.kind"),
        ("scenarios:\n  x:\n    kind: persona\n    persona: nobody\n", "unknown persona 'nobody'"),
        ("scenarios:\n  x:\n    kind: ivr\n", "kind 'ivr' needs its 'ivr' section"),
        ("numbers:\n  0123: busy\n", "quote every key"),
        ("numbers:\n  '0123': nowhere\n", "numbers.0123: unknown scenario 'nowhere'"),
        ("numbers:\n  '555': busy\n", "4-digit suffix"),
        ("default: nowhere\n", "'default' must name a scenario"),
        ("personas:\n  p:\n    name: P\n", "personas.p.organisation"),
        ("scenarios:\n  x:\n    kind: busy\n    colour: red\n", "scenarios.x.colour"),
    ],
)
def test_bad_operator_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as raised:
        load_scenarios(path)
    assert message in str(raised.value)
    assert str(path) in str(raised.value)


def test_a_missing_operator_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenarios(tmp_path / "nope.yaml")


def test_an_empty_operator_file_changes_nothing(tmp_path: Path) -> None:
    assert load_scenarios(write(tmp_path, "")) == load_scenarios()
