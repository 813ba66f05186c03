"""Simulator scenarios as data: who (or what) answers which number, and how.

A scenario book is loaded from the shipped ``scenarios.yaml`` and, optionally,
an operator file in the same format whose entries are merged over it by name.
Numbers in the fictional NANP range ``+1 NXX 555-01XX`` are looked up by their
last four digits (any area code plays the same scenario); the operator may also
map exact E.164 numbers, which win over suffixes. A simulator-range number with
no entry plays the book's ``default`` scenario. Any other number has no scenario.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SIMULATOR_RANGE = re.compile(r"^\+1[2-9]\d{2}555(01\d{2})$")
_SUFFIX = re.compile(r"^01\d{2}$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the problem."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fact(_Model):
    """Something a persona knows: said when the caller's words hit its keywords."""

    keywords: tuple[str, ...] = Field(min_length=1)  # words or short phrases; a phrase scores per word
    answer: str = Field(min_length=1)
    yes_no: bool | None = None  # when set, the answer starts with "Yes, " / "No, " if it does not already
    # The value a careful listener records from ``answer`` (a read-back is checked against it; when unset,
    # against the figures in ``answer`` and ``yes_no``).
    value: str | float | bool | None = None
    correction: str | None = None  # said when a read-back gets this fact wrong (default: "No, " + answer)
    hold: str | None = None  # said first ("Bear with me while I check out back"); the answer follows later
    hold_seconds: float = Field(8.0, ge=0)
    transfer_to: "str | Persona | None" = None  # after ``answer`` the call passes to this persona, who greets
    transfer_seconds: float = Field(4.0, ge=0)
    hangs_up: bool = False  # hangs up after ``answer`` (a promise to call back, "don't call here again")


class Persona(_Model):
    name: str
    organisation: str
    role: str = "receptionist"
    greeting: str
    facts: tuple[Fact, ...] = ()
    fallback: str = "Hmm, I'm not sure about that, sorry."
    style: Literal["plain", "terse", "chatty"] = "plain"  # terse: first sentence only; chatty: adds fillers
    asks_who_first: bool = False  # answers the caller's first words with "Sorry, who is this?"
    refuses: bool = False  # answers every question with ``refusal``
    refusal: str = "Sorry, I'm not allowed to give out that information over the phone."
    hangs_up_after_turns: int | None = Field(None, ge=1)  # hangs up instead of answering turn N
    hang_up_line: str | None = "Sorry, I have to go."
    readback: Literal["check", "agree"] = "check"  # check: a wrong read-back is corrected; agree: always "yes"
    spelling_request: str | None = None  # asked before the first answer, e.g. "Could you spell the surname?"
    spelling: str | None = None  # the letters the caller must then spell out (case and separators ignored)
    spelling_failed: str = "Sorry, I can't find anything under that name."


PersonaRef = str | Persona  # a name from ``personas`` or an inline persona
Fact.model_rebuild()


class VoicemailSpec(_Model):
    greeting: str
    beep: bool = True
    hang_up_after_silence_seconds: float = Field(10.0, gt=0)


class IvrOption(_Model):
    """Where a key leads: a persona, or a further menu."""

    persona: PersonaRef | None = None
    menu: "IvrSpec | None" = None

    @model_validator(mode="after")
    def _one_target(self) -> "IvrOption":
        if (self.persona is None) == (self.menu is None):
            raise ValueError("an option leads to exactly one of 'persona' or 'menu'")
        return self


class IvrSpec(_Model):
    menu: str  # spoken in full on answer and on every repeat
    options: dict[str, IvrOption]  # keyed by the digit that routes to it
    connecting: str = "Connecting you now."
    hold_seconds: float = Field(2.0, ge=0)
    invalid: str = "Sorry, that is not a valid option."
    repeat_after_seconds: float = Field(6.0, gt=0)
    max_repeats: int = Field(2, ge=0)
    goodbye: str = "We did not receive a valid selection. Goodbye."


IvrOption.model_rebuild()


class ScreeningSpec(_Model):
    prompt: str
    persona: PersonaRef
    accepted: str = "Thank you. Please stay on the line while I see if they're available."
    hold_seconds: float = Field(3.0, ge=0)
    retry: str = "Sorry, I didn't get that. Please say your name and why you're calling."
    rejected: str = "Sorry, I can't connect this call. Goodbye."
    min_words: int = Field(4, ge=1)  # a shorter introduction is not accepted
    repeat_after_seconds: float = Field(6.0, gt=0)


Kind = Literal["persona", "voicemail", "silent", "ivr", "screening", "no_answer", "busy", "decline", "failure"]
_SECTION = {"persona": "persona", "voicemail": "voicemail", "ivr": "ivr", "screening": "screening"}


class Scenario(_Model):
    kind: Kind
    description: str = ""
    ring_seconds: float = Field(4.0, ge=0, le=300)  # before answer, busy tone or decline
    persona: PersonaRef | None = None
    voicemail: VoicemailSpec | None = None
    ivr: IvrSpec | None = None
    screening: ScreeningSpec | None = None
    failure_reason: str = "carrier_unreachable"

    @model_validator(mode="after")
    def _section_present(self) -> "Scenario":
        section = _SECTION.get(self.kind)
        if section and getattr(self, section) is None:
            raise ValueError(f"kind '{self.kind}' needs its '{section}' section")
        return self


class ScenarioFile(_Model):
    default: str | None = None
    personas: dict[str, Persona] = {}
    scenarios: dict[str, Scenario] = {}
    numbers: dict[str, str] = {}  # "01XX" suffix or exact E.164 -> scenario name


@dataclass(frozen=True)
class ScenarioBook:
    """Resolved scenarios (every persona reference replaced by the persona) and the number map."""

    scenarios: Mapping[str, Scenario]
    suffixes: Mapping[str, str]
    exact: Mapping[str, str]
    default: str

    def for_number(self, e164: str) -> Scenario | None:
        if e164 in self.exact:
            return self.scenarios[self.exact[e164]]
        match = SIMULATOR_RANGE.match(e164)
        if match is None:
            return None
        return self.scenarios[self.suffixes.get(match.group(1), self.default)]

    def name_for(self, e164: str) -> str | None:
        """The scenario name a number plays (for docs, logs and tests)."""
        if e164 in self.exact:
            return self.exact[e164]
        match = SIMULATOR_RANGE.match(e164)
        return None if match is None else self.suffixes.get(match.group(1), self.default)


def _read(text: str, origin: str) -> ScenarioFile:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{origin}: expected a mapping with 'scenarios', 'personas', 'numbers', 'default'")
    unquoted = [k for k in (data.get("numbers") or {}) if not isinstance(k, str)]
    if unquoted:
        raise ScenarioError(f"{origin}: numbers: quote every key, e.g. '0123' or '+14155550123' "
                            f"(YAML reads {unquoted[0]!r} as a number)")
    try:
        return ScenarioFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise ScenarioError(f"{origin}: {problems}") from None


def _resolve(ref: Any, personas: Mapping[str, Persona], where: str, origin: str, depth: int = 0) -> Persona:
    """The persona ``ref`` names, with the colleagues its facts transfer to resolved too."""
    if not isinstance(ref, Persona):
        if ref not in personas:
            raise ScenarioError(f"{origin}: {where}: unknown persona '{ref}'")
        ref = personas[ref]
    if depth > 5:
        raise ScenarioError(f"{origin}: {where}: transfers nest more than five deep")
    facts = tuple(
        fact.model_copy(update={"transfer_to": _resolve(fact.transfer_to, personas, f"{where}.facts.{i}.transfer_to",
                                                        origin, depth + 1)})
        if fact.transfer_to is not None else fact
        for i, fact in enumerate(ref.facts))
    return ref.model_copy(update={"facts": facts})


def _resolve_menu(spec: IvrSpec, personas: Mapping[str, Persona], where: str, origin: str) -> IvrSpec:
    options = {}
    for digit, option in spec.options.items():
        if option.menu is not None:
            submenu = _resolve_menu(option.menu, personas, f"{where}.options.{digit}.menu", origin)
            options[digit] = IvrOption(menu=submenu)
        else:
            options[digit] = IvrOption(persona=_resolve(option.persona, personas, f"{where}.options.{digit}", origin))
    return spec.model_copy(update={"options": options})


def _build(files: list[tuple[ScenarioFile, str]]) -> ScenarioBook:
    personas: dict[str, Persona] = {}
    scenarios: dict[str, Scenario] = {}
    numbers: dict[str, str] = {}
    default: str | None = None
    for parsed, _ in files:
        personas.update(parsed.personas)
        scenarios.update(parsed.scenarios)
        numbers.update(parsed.numbers)
        default = parsed.default or default
    origin = files[-1][1]
    resolved: dict[str, Scenario] = {}
    for name, sc in scenarios.items():
        update: dict[str, Any] = {}
        if sc.persona is not None:
            update["persona"] = _resolve(sc.persona, personas, f"scenarios.{name}.persona", origin)
        if sc.ivr is not None:
            update["ivr"] = _resolve_menu(sc.ivr, personas, f"scenarios.{name}.ivr", origin)
        if sc.screening is not None:
            screened = _resolve(sc.screening.persona, personas, f"scenarios.{name}.screening.persona", origin)
            update["screening"] = sc.screening.model_copy(update={"persona": screened})
        resolved[name] = sc.model_copy(update=update)
    suffixes: dict[str, str] = {}
    exact: dict[str, str] = {}
    for key, name in numbers.items():
        if name not in resolved:
            raise ScenarioError(f"{origin}: numbers.{key}: unknown scenario '{name}'")
        if _SUFFIX.match(key):
            suffixes[key] = name
        elif _E164.match(key):
            exact[key] = name
        else:
            raise ScenarioError(f"{origin}: numbers.{key}: use a 4-digit suffix 0100-0199 or an E.164 number")
    if default is None or default not in resolved:
        raise ScenarioError(f"{origin}: 'default' must name a scenario (got {default!r})")
    return ScenarioBook(scenarios=resolved, suffixes=suffixes, exact=exact, default=default)


def load_scenarios(extra_file: str | Path | None = None) -> ScenarioBook:
    """The shipped scenarios, with ``extra_file`` (the operator's) merged over them."""
    shipped = resources.files(__package__).joinpath("scenarios.yaml").read_text(encoding="utf-8")
    files = [(_read(shipped, "scenarios.yaml (shipped)"), "scenarios.yaml (shipped)")]
    if extra_file is not None:
        path = Path(extra_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"{path}: cannot read the scenario file: {exc.strerror}") from None
        files.append((_read(text, str(path)), str(path)))
    return _build(files)
