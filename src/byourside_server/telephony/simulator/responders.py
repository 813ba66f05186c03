"""The machines a simulated call can reach: voicemail, a silent line, an IVR menu
and a call-screening assistant (the last two hand over to a persona)."""

from __future__ import annotations

from typing import Callable

from byourside_server.telephony.simulator.personas import PersonaResponder
from byourside_server.telephony.simulator.scenarios import IvrSpec, Persona, Scenario, ScreeningSpec, VoicemailSpec
from byourside_server.telephony.simulator.script import Action, Flush, Hang, Responder, Say, Tone, after

# Who plays a persona: the scripted responder, or e.g. a model-driven one (llm_persona.py).
PersonaFactory = Callable[[Persona], PersonaResponder]


class SilentResponder(Responder):
    """Picks up and never says a thing (dead air, a pocket answer)."""


class VoicemailResponder(Responder):
    """Plays the greeting and the tone, records whatever is said, hangs up on silence."""

    def __init__(self, spec: VoicemailSpec) -> None:
        self.spec = spec
        self.gone = False

    def on_answer(self) -> list[Action]:
        return [Say(self.spec.greeting, pause=0.5), *([Tone()] if self.spec.beep else [])]

    def idle_after(self) -> float | None:
        return None if self.gone else self.spec.hang_up_after_silence_seconds

    def on_idle(self) -> list[Action]:
        self.gone = True
        return [Hang(pause=0)]


class IvrResponder(Responder):
    """A keypad menu: a listed digit connects a persona or opens a further menu; anything else repeats
    the menu."""

    def __init__(self, spec: IvrSpec, persona_factory: PersonaFactory = PersonaResponder) -> None:
        self.spec = spec
        self.persona_factory = persona_factory
        self.person: PersonaResponder | None = None
        self.misses = 0
        self.gone = False

    def on_answer(self) -> list[Action]:
        return [Say(self.spec.menu, pause=0.6)]

    def _miss(self, sorry: str | None) -> list[Action]:
        self.misses += 1
        if self.misses > self.spec.max_repeats:
            self.gone = True
            return [Say(self.spec.goodbye, pause=0.3), Hang()]
        return [*([Say(sorry, pause=0.3)] if sorry else []), Say(self.spec.menu, pause=0.3)]

    def on_digits(self, digits: str) -> list[Action]:
        if self.person is not None:
            return self.person.on_digits(digits)
        if self.gone or not digits:
            return []
        option = self.spec.options.get(digits[0])
        if option is None:
            return [Flush(), *self._miss(self.spec.invalid)]
        if option.menu is not None:  # a further level of the menu
            self.spec, self.misses = option.menu, 0
            return [Flush(), Say(self.spec.menu, pause=0.3), *self.on_digits(digits[1:])]
        assert isinstance(option.persona, Persona)
        self.person = self.persona_factory(option.persona)
        return [Flush(), Say(self.spec.connecting, pause=0.3), *after(self.spec.hold_seconds, self.person.on_answer())]

    def on_speech(self, text: str) -> list[Action]:
        if self.person is not None:
            return self.person.on_speech(text)
        return [] if self.gone else self._miss("Sorry, I didn't understand.")

    def idle_after(self) -> float | None:
        if self.person is not None:
            return self.person.idle_after()
        return None if self.gone else self.spec.repeat_after_seconds

    def on_idle(self) -> list[Action]:
        if self.person is not None:
            return self.person.on_idle()
        return self._miss(None)


class ScreeningResponder(Responder):
    """Asks who is calling and why; a real introduction gets the caller put through."""

    def __init__(self, spec: ScreeningSpec, persona_factory: PersonaFactory = PersonaResponder) -> None:
        self.spec = spec
        self.persona_factory = persona_factory
        self.person: PersonaResponder | None = None
        self.tries = 0
        self.gone = False

    def on_answer(self) -> list[Action]:
        return [Say(self.spec.prompt, pause=0.5)]

    def _retry(self) -> list[Action]:
        self.tries += 1
        if self.tries > 1:
            self.gone = True
            return [Say(self.spec.rejected), Hang()]
        return [Say(self.spec.retry)]

    def on_speech(self, text: str) -> list[Action]:
        if self.person is not None:
            return self.person.on_speech(text)
        if self.gone:
            return []
        if len(text.split()) < self.spec.min_words:
            return self._retry()
        assert isinstance(self.spec.persona, Persona)
        self.person = self.persona_factory(self.spec.persona)
        return [Say(self.spec.accepted), *after(self.spec.hold_seconds, self.person.on_answer())]

    def on_digits(self, digits: str) -> list[Action]:
        return self.person.on_digits(digits) if self.person is not None else []

    def idle_after(self) -> float | None:
        if self.person is not None:
            return self.person.idle_after()
        return None if self.gone else self.spec.repeat_after_seconds

    def on_idle(self) -> list[Action]:
        return self.person.on_idle() if self.person is not None else self._retry()


def responder_for(scenario: Scenario, persona_factory: PersonaFactory = PersonaResponder) -> Responder:
    """A fresh callee for one answered call of ``scenario`` (a resolved scenario)."""
    if scenario.kind == "persona":
        assert isinstance(scenario.persona, Persona)
        return persona_factory(scenario.persona)
    if scenario.kind == "voicemail" and scenario.voicemail is not None:
        return VoicemailResponder(scenario.voicemail)
    if scenario.kind == "ivr" and scenario.ivr is not None:
        return IvrResponder(scenario.ivr, persona_factory)
    if scenario.kind == "screening" and scenario.screening is not None:
        return ScreeningResponder(scenario.screening, persona_factory)
    if scenario.kind == "silent":
        return SilentResponder()
    raise ValueError(f"scenario kind '{scenario.kind}' never answers")
