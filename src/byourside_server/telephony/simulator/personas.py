"""Scripted personas: a deterministic person on the other end of a simulated call.

Given what the caller just said, a persona picks its reply in this order:
1. its hang-up turn (``hangs_up_after_turns``) -> ``hang_up_line`` and hang up;
2. a goodbye ("goodbye", "bye", or "thank you" without a question) -> "Bye!"
   and hang up;
3. the first words of a persona that ``asks_who_first`` -> "Sorry, who is this?";
4. "who am I speaking with?" -> its name and organisation; "are you there?" ->
   "Yes, I'm here.";
5. a read-back ("to confirm: ...", ending "is that right?") -> checked against its facts
   (readback.py): "Yes, that's right." or the correction of the first wrong value;
6. a refusing persona -> its refusal, for any question;
7. a persona with a ``spelling_request`` asks it before its first answer and
   answers only once the caller spells ``spelling`` letter by letter;
8. the fact whose keywords overlap the caller's question most (the sentences
   ending in "?", else everything said); ties go to the fact listed first.
   A fact may first put the caller on hold (``hold``, then the answer after
   ``hold_seconds``), transfer the call to a colleague (``transfer_to``: the
   colleague greets after ``transfer_seconds`` and answers from then on) or
   hang up after its answer (``hangs_up``);
9. otherwise its fallback line for a question, or "How can I help you?".
"""

from __future__ import annotations

import re

from byourside_server.telephony.simulator.keywords import has_phrase, score, words
from byourside_server.telephony.simulator.readback import answer_readback
from byourside_server.telephony.simulator.scenarios import Fact, Persona
from byourside_server.telephony.simulator.script import Action, Hang, Responder, Say, after

_CHATTY_OPENERS = ("Let me just check... ", "Good question! ", "Ah, let me see. ")


def _has_any(said: list[str], phrases: tuple[str, ...]) -> bool:
    return any(has_phrase(said, p) for p in phrases)


def questions(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    return [p for p in parts if p.endswith("?")]


_GOODBYE = ("goodbye", "bye", "have a nice day", "have a good day", "have a great day", "take care")
_THANKS = ("thank you", "thanks")
_WHO_ASK = ("who am i speaking", "who am i talking", "who is this", "what is your name", "what's your name")
_PRESENCE = ("are you there", "are you still there", "can you hear me")
_GREETING = ("hi", "hello", "hey", "good morning", "good afternoon", "good evening")


_GENERIC = frozenset(words(
    "a an the to of and or in on at is are be it that this me my you your we i can could would will do does "
    "please help with about tell know quick yes no question so just any anything there"))


_READBACK = re.compile(r"\bconfirm\s*:|\b(?:is that|is this|have i got that|did i get that)\s+(?:all\s+)?"
                       r"(?:right|correct)\s*\?\s*$", re.IGNORECASE)


def is_readback(text: str) -> bool:
    """The caller reads values back for a yes or a correction ("Just to confirm: ... Is that right?"),
    not merely mentions confirming ("I'm calling to confirm an appointment. Is it confirmed?")."""
    return bool(_READBACK.search(text.strip()))


def best_fact(persona: Persona, text: str) -> Fact | None:
    """The fact that answers ``text``: its questions; the whole utterance only when
    the questions are generic ("Could you help me with that?") or there are none."""
    asked = " ".join(questions(text))
    specific = len([w for w in words(asked) if w not in _GENERIC]) > 1
    for focus in (asked, text) if not specific else (asked,):
        said = words(focus)
        best, best_score = None, 0
        for fact in persona.facts:
            points = score(fact, said)
            if points > best_score:
                best, best_score = fact, points
        if best is not None:
            return best
    return None


def _spelled(text: str, target: str) -> bool:
    """Whether ``text`` spells ``target`` letter by letter ("R-I-V-E-R-A", "r as in Romeo, i, v...")."""
    letters = "".join(re.findall(r"(?<![a-z])([a-z])(?![a-z])", text.lower().replace("-", " ")))
    wanted = re.sub(r"[^a-z]", "", target.lower())
    return bool(wanted) and wanted in letters


def _answer(fact: Fact) -> str:
    text = fact.answer.strip()
    if fact.yes_no is not None:
        cue = "Yes" if fact.yes_no else "No"
        if not text.lower().startswith(cue.lower()):
            keep = re.match(r"I\b", text) is not None  # "I'm", "I have" keep their capital
            text = f"{cue}, {text if keep else text[:1].lower() + text[1:]}"
    return text


class PersonaResponder(Responder):
    """A persona on a live call: keeps the turn count and whether it has hung up."""

    def __init__(self, persona: Persona) -> None:
        self.persona = persona
        self.turns = 0
        self.asked_who = False
        self.nudged = False
        self.gone = False
        self.fact: Fact | None = None  # the fact the latest reply came from
        self.spelling_question: str | None = None  # the question held back until the caller spells
        self.spelling_asks = 0
        self.colleague: PersonaResponder | None = None  # who took the call after a transfer

    def reply(self, text: str) -> tuple[str, bool]:
        """The persona's answer to ``text`` and whether it hangs up after saying it."""
        p = self.persona
        self.turns += 1
        self.fact = None
        if p.hangs_up_after_turns is not None and self.turns >= p.hangs_up_after_turns:
            return p.hang_up_line or "", True
        said = words(text)
        asked = questions(text)
        if _has_any(said, _GOODBYE) or (_has_any(said, _THANKS) and not asked):
            return ("Bye." if p.style == "terse" else "Okay, bye!"), True
        if p.asks_who_first and not self.asked_who:
            self.asked_who = True
            return "Sorry, who is this?", False
        if _has_any(said, _WHO_ASK):
            return f"This is {p.name} at {p.organisation}.", False
        if _has_any(said, _PRESENCE):
            return "Yes, I'm here.", False
        if is_readback(text):
            return answer_readback(p, text), False
        if self.spelling_question is not None:
            if _spelled(text, p.spelling or ""):
                text, self.spelling_question = self.spelling_question, None
            elif self.spelling_asks < 2:
                self.spelling_asks += 1
                return "Sorry, could you spell it for me letter by letter?", False
            else:
                self.spelling_question = None
                return p.spelling_failed, False
        fact = best_fact(p, text)
        if p.refuses and (asked or fact is not None):
            return p.refusal, False
        if fact is not None and p.spelling_request and p.spelling and self.spelling_asks == 0:
            self.spelling_question, self.spelling_asks = text, 1
            return p.spelling_request, False
        if fact is not None:
            self.fact = fact
            return self._styled(_answer(fact)), fact.hangs_up
        if asked:
            return p.fallback, False
        if _has_any(said, _GREETING):
            return "Hi! How can I help you?", False
        return "Okay. What can I do for you?", False

    def _styled(self, answer: str) -> str:
        if self.persona.style == "terse":
            return re.split(r"(?<=[.!?])\s+", answer)[0]
        if self.persona.style == "chatty":
            return _CHATTY_OPENERS[(self.turns - 1) % len(_CHATTY_OPENERS)] + answer
        return answer

    # -- Responder hooks --

    def on_answer(self) -> list[Action]:
        return [Say(self.persona.greeting, pause=0.5)]

    def on_speech(self, text: str) -> list[Action]:
        if self.colleague is not None:
            return self.colleague.on_speech(text)
        if self.gone:
            return []
        self.nudged = False
        answer, hang = self.reply(text)
        actions: list[Action] = [Say(answer)] if answer else []
        fact = self.fact
        if fact is not None and fact.hold and actions:
            actions = [Say(fact.hold), *after(fact.hold_seconds, actions)]
        if hang:
            self.gone = True
            actions.append(Hang())
        elif fact is not None and isinstance(fact.transfer_to, Persona):
            self.colleague = PersonaResponder(fact.transfer_to)
            actions += after(fact.transfer_seconds, self.colleague.on_answer())
        return actions

    def on_digits(self, digits: str) -> list[Action]:
        return self.colleague.on_digits(digits) if self.colleague is not None else []

    def idle_after(self) -> float | None:
        if self.colleague is not None:
            return self.colleague.idle_after()
        return None if self.gone else 10.0

    def on_idle(self) -> list[Action]:
        if self.colleague is not None:
            return self.colleague.on_idle()
        if not self.nudged:
            self.nudged = True
            return [Say("Hello? Are you still there?", pause=0)]
        self.gone = True
        return [Say("I'm going to hang up now.", pause=0), Hang()]
