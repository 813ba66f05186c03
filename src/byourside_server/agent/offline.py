"""The offline agent: a deterministic brain that needs no network and no model.

It works through a fixed policy. Wait for the first words and decide what
answered: a voicemail greeting (hang up at once, before the beep, leaving no
message), an IVR menu (press the option whose words best match the objective and
fields, else the operator, else 0), a call-screening service (say who is calling
and why) or a person. With a person: disclose that it is an AI and for whom,
state the objective, ask for each field in turn (once more if the reply held no
answer, never again after a refusal), read the values back once, say goodbye and
hang up. Two refusals in a row end the questions early.

Replies are read by the understanding layer (``agent/understanding``): the value
that answers the question (corrections win), yes/no over the whole reply, and
the situations that change the plan: a hold is waited through; after a
transfer the colleague hears who is calling and the question again; a request
to spell gets the name spelled; a wrong number, "don't call me" or a promise to
call back ends the call politely with nothing recorded from a wrong number. A
read-back that is disputed takes the correction from the same reply, else asks
again once; a value still disputed (or repeated unchanged after the dispute) is
dropped, so nothing is delivered that the callee contradicted.

A machine is sometimes taken for a person on its first words ("Hi, you've
reached Sam."): when the next thing heard, before any answer, is the rest of a
recorded greeting ("leave your name and number", "not available to take your
call", with or without a tone), the call is treated as voicemail: the message,
if one is asked for, is left after the tone or the pause, and nothing the
greeting said is taken as an answer, even on a call with no fields.

When the request has ``transferTo`` and the callee asks for a person ("can I
talk to a real person?"), the call is handed over (agent/transfer.py) and ends
``transferred``; if nobody takes it, the agent apologises and says goodbye.

``ConversationEnd.answered_by`` is what picked up first: an IVR or screener
stays "ivr"/"screening" even after a person comes on (``reached_human`` in the
notes says whether one did), and becomes "voicemail" if it led to voicemail.
``ConversationEnd.notes`` carries what was parsed while talking (keys below);
``analyze`` turns them into the client's outcome. When the notes are missing
(the runtime ended the call itself, e.g. on max duration) ``analyze`` re-reads
the transcript instead.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any, Callable, Mapping, Sequence

from byourside_server.agent import etiquette
from byourside_server.agent import phrases as say
from byourside_server.agent import transfer
from byourside_server.agent import understanding as hear
from byourside_server.agent.base import (
    CALLEE_HUNG_UP, NO_RESPONSE, OBJECTIVE_MET, OBJECTIVE_UNREACHABLE, VOICEMAIL_DETECTED,
    Analysis, Brain, ConversationEnd,
)
from byourside_server.agent.call_date import local_date
from byourside_server.agent.transcript import evidence, extract_from_turns, parse_value
from byourside_server.domain import CallTask, EndReason, FieldSpec, Turn
from byourside_server.telephony.base import Beep, CalleeHungUp, HangUp, Line, Silence, Speech

NOTES_EXTRACTED = "extracted"  # {field name: value parsed during the call, or None}
NOTES_REFUSED = "refused"  # field names the callee declined to share
NOTES_ROUTE = "route"  # gatekeepers passed, e.g. ["ivr:1"] or ["screening"]
NOTES_REACHED_HUMAN = "reached_human"  # a person spoke with us
NOTES_CONFIRMED = "confirmed"  # reply to the read-back: True, False (then re-asked) or None
NOTES_REPLY = "reply"  # the person's answer to the objective when there were no fields
NOTES_MESSAGE_LEFT = "message_left"  # a voicemail message was left after the tone
NOTES_SITUATION = "situation"  # why the call ended early: "wrong_number", "do_not_call", "callback",
#   "transferred_to_voicemail" or None
NOTES_DISPUTED = "disputed"  # fields whose value the callee contradicted on the read-back; left empty


class _HungUp(Exception):
    pass


class _NoResponse(Exception):
    pass


class _Stuck(Exception):
    """Menus or screeners that never lead anywhere."""


class _ToneHeard(Exception):
    """A record tone after what sounded like a person: it was a voicemail greeting."""


class _GreetingHeard(Exception):
    """A recorded greeting where a person's answer was expected: what answered was a voicemail."""


class _PersonAsked(Exception):
    """The callee asked to speak with a person, and the request names people to transfer to."""


class _EndEarly(Exception):
    """The reply changes the plan: a wrong number, "don't call me", or a promise to call back."""

    def __init__(self, situation: str) -> None:
        super().__init__(situation)
        self.situation = situation


_SITUATION_BYE = {"wrong_number": say.BYE_WRONG_NUMBER, "do_not_call": say.BYE_DO_NOT_CALL,
                  "callback": say.BYE_CALLBACK, "transferred_to_voicemail": None}


class OfflineBrain(Brain):
    name = "offline"

    def __init__(self, *, answer_wait_seconds: float = 5.0, reply_wait_seconds: float = 8.0,
                 hold_wait_seconds: float = 30.0, bye_wait_seconds: float = 3.0,
                 fallback: Callable[[FieldSpec, str, str], Any] | None = None) -> None:
        self.answer_wait = answer_wait_seconds
        self.reply_wait = reply_wait_seconds
        self.hold_wait = hold_wait_seconds
        self.bye_wait = bye_wait_seconds
        # (field, question, reply) -> value, asked only where the rules read nothing (BYS_OFFLINE_EXTRACTOR)
        self.fallback = fallback

    async def converse(self, task: CallTask, line: Line) -> ConversationEnd:
        return await _Conversation(self, task, line).run()

    async def analyze(self, task: CallTask, turns: Sequence[Turn], end: ConversationEnd) -> Analysis:
        notes = end.notes
        raw = notes.get(NOTES_EXTRACTED)
        if not isinstance(raw, Mapping):
            raw = extract_from_turns(task, turns)
        extracted = {f.name: etiquette.coerce(f, raw.get(f.name)) for f in task.fields}
        reached = notes.get(NOTES_REACHED_HUMAN)
        if reached is None:
            reached = end.answered_by == "human" or any(
                t.speaker == "contact" and say.classify_answer(t.text) == "human" for t in turns)
        if end.reason == OBJECTIVE_MET and all(v is not None for v in extracted.values()):
            met: bool | None = True
        else:
            met = False if reached and end.answered_by != "voicemail" else None
        summary = say.summary(
            reason=end.reason, answered_by=end.answered_by, reached_human=bool(reached),
            route=list(notes.get(NOTES_ROUTE) or []), extracted=extracted, refused=list(notes.get(NOTES_REFUSED) or []),
            confirmed=notes.get(NOTES_CONFIRMED), reply=notes.get(NOTES_REPLY) if not task.fields else None,
            situation=notes.get(NOTES_SITUATION), disputed=list(notes.get(NOTES_DISPUTED) or []),
        )
        if end.reason == EndReason.TRANSFERRED:
            summary = summary.replace(f"The call ended ({end.reason}).",
                                      "They asked to speak with a person, and the call was handed over to one.")
        if notes.get(NOTES_MESSAGE_LEFT):
            summary = summary.replace(say.VOICEMAIL_NO_MESSAGE, "The agent left the requested message after the tone.")
        return Analysis(summary=summary, extracted=extracted, objective_met=met, evidence=evidence(task, turns, extracted))


class _Conversation:
    def __init__(self, brain: OfflineBrain, task: CallTask, line: Line) -> None:
        self.brain, self.task, self.line = brain, task, line
        self.values: dict[str, Any] = {f.name: None for f in task.fields}
        self.refused: list[str] = []
        self.route: list[str] = []
        self.answered_by: str | None = None
        self.reached_human = False
        self.confirmed: bool | None = None
        self.reply: str | None = None
        self.who_left = 2
        self.message_left = False
        self.tone_heard = False
        self.today = local_date(task.to)  # the callee's date, for "tomorrow" and the like
        self.situation: str | None = None
        self.disputed: list[str] = []
        self.spell_left = 2
        self.question_unheard = False  # the last question was cut off before the callee heard it
        self.repeats_left = 2  # questions asked again because the callee talked over them

    async def run(self) -> ConversationEnd:
        try:
            reason = await self._talk()
        except (_HungUp, CalleeHungUp):
            reason = CALLEE_HUNG_UP
            await self.line.hangup()
        except _Stuck:
            reason = OBJECTIVE_UNREACHABLE
            await self.line.hangup()
        except _ToneHeard:
            reason = VOICEMAIL_DETECTED
            self.answered_by, self.reached_human, self.tone_heard = "voicemail", False, True
            await self._leave_message()
            await self.line.hangup()
        except _GreetingHeard:
            reason = VOICEMAIL_DETECTED  # the message, if any, waits for the tone or the pause after the greeting
            self.answered_by, self.reached_human, self.reply = "voicemail", False, None
            await self._leave_message()
            await self.line.hangup()
        except _EndEarly as early:
            reason = OBJECTIVE_UNREACHABLE
            self.situation = early.situation
            if early.situation in ("wrong_number", "do_not_call"):  # nothing they said is recorded
                self.values = {name: None for name in self.values}
            bye = _SITUATION_BYE[early.situation]
            if bye is None:  # a colleague's voicemail: leave the message if there is one, then hang up
                self.message_left = await etiquette.leave_voicemail(
                    self.line, self.task, tone_heard=False, wait_seconds=self.brain.answer_wait)
                await self.line.hangup()
            else:
                await self._goodbye(bye)
        except _PersonAsked:
            reason = await self._transfer()
        except _NoResponse:
            reason = NO_RESPONSE
            with suppress(CalleeHungUp):
                await self.line.say(say.BYE_SILENT)
            await self.line.hangup()
        notes = {NOTES_EXTRACTED: dict(self.values), NOTES_REFUSED: list(self.refused), NOTES_ROUTE: list(self.route),
                 NOTES_REACHED_HUMAN: self.reached_human, NOTES_CONFIRMED: self.confirmed, NOTES_REPLY: self.reply,
                 NOTES_MESSAGE_LEFT: self.message_left, NOTES_SITUATION: self.situation,
                 NOTES_DISPUTED: list(self.disputed)}
        return ConversationEnd(reason=reason, answered_by=self.answered_by or "unknown", notes=notes)  # type: ignore[arg-type]

    # -- listening --

    async def _hear(self, timeout: float, nudge: str, patience: int = 1) -> Speech | Beep:
        """The next utterance; after ``patience`` silent waits say ``nudge`` once, then give up."""
        nudged = False
        silent = 0
        while True:
            event = await self.line.listen(timeout)
            if isinstance(event, HangUp):
                raise _HungUp
            if not isinstance(event, Silence):
                return event
            silent += 1
            if silent < patience:
                continue
            if nudged:
                raise _NoResponse
            await self.line.say(nudge)
            nudged, silent = True, patience - 1

    async def _exchange(self, text: str, question: str | None = None) -> str:
        """Say ``text`` and return the reply, waiting through "please hold" and transfers. When a
        colleague picks up after a transfer, introduce the call again and repeat ``question``."""
        spoken = await self.line.say(text)
        # The callee talked over us before the question reached them: their reply answers something else.
        self.question_unheard = bool(question and spoken.interrupted and question not in spoken.heard_of(text))
        timeout = self.brain.reply_wait
        transferred = False
        greeted_again = False
        for _ in range(6):
            event = await self._hear(timeout, say.NUDGE)
            timeout = self.brain.hold_wait
            if isinstance(event, Beep) and all(v is None for v in self.values.values()) and not self.route:
                raise _ToneHeard
            if not isinstance(event, Speech):
                continue
            reply = event.text
            if self.task.transfer_to and transfer.asks_for_a_person(reply):
                raise _PersonAsked
            if not transferred and self._nothing_answered() and hear.is_voicemail_greeting(reply):
                raise _GreetingHeard  # the greeting went on after its first words were taken for a person's
            if hear.is_transfer(reply) and hear.situation(reply) is None:
                transferred = True
            elif hear.is_hold(reply):
                continue
            elif transferred and say.classify_answer(reply) == "voicemail":
                raise _EndEarly("transferred_to_voicemail")
            elif question and (transferred or (hear.is_greeting(reply) and not greeted_again)):
                # someone new picked up (after a transfer, or we spoke before they were on the line)
                transferred, greeted_again = False, True
                timeout = self.brain.reply_wait
                await self.line.say(f"{say.greeting(self.task)} "
                                    f"{say.purpose(self.task.objective)} {question}")
            else:
                return reply
        raise _NoResponse

    def _nothing_answered(self) -> bool:
        """No answer heard yet: no value, no reply to the objective, no read-back, no refusal."""
        return (all(v is None for v in self.values.values()) and self.reply is None and self.confirmed is None
                and not self.refused)

    # -- the call --

    async def _talk(self) -> str:
        # The opener is known before anyone speaks: its first sentence renders while the callee says hello.
        self.line.prepare(f"{say.greeting(self.task)} {say.purpose(self.task.objective)}")
        greeting = await self._reach_someone()
        if greeting is None:
            self.answered_by = "voicemail"
            await self._leave_message()
            await self.line.hangup()
            return VOICEMAIL_DETECTED
        self.reached_human = True
        self.answered_by = self.answered_by or "human"
        return await self._with_person()

    async def _leave_message(self) -> None:
        """When the call asks for it, wait for the tone (or a pause) and leave the message."""
        self.message_left = await etiquette.leave_voicemail(self.line, self.task, tone_heard=self.tone_heard,
                                                            wait_seconds=self.brain.answer_wait)

    async def _reach_someone(self) -> str | None:
        """Get past menus and screeners; the person's first words, or None for voicemail."""
        event = await self._hear(self.brain.answer_wait, say.SILENT_HELLO, patience=2)
        pressed: set[tuple[str, str]] = set()  # (menu heard, digit): a repeated menu gets another choice
        for _ in range(6):
            kind = "voicemail" if isinstance(event, Beep) else say.classify_answer(event.text)
            if kind != "hold":
                self.answered_by = self.answered_by or kind
            if kind == "voicemail":
                if "screening" in self.route and isinstance(event, Speech) and not say.invites_message(event.text):
                    raise _Stuck  # the screener declined to put us through; there is no mailbox to speak to
                self.tone_heard = isinstance(event, Beep)
                return None
            if kind == "human":
                return event.text  # type: ignore[union-attr]
            if kind == "ivr":
                options = say.ivr_options(event.text)  # type: ignore[union-attr]
                menu = " ".join(f"{d}:{label}" for d, label in options)
                digit = say.choose_ivr_digit(options, self._topic()) if options else None
                if digit is None:  # "that is not a valid option": the menu will be read again
                    event = await self._hear(self.brain.hold_wait, say.SILENT_HELLO)
                    continue
                if (menu, digit) in pressed:
                    digit = "0" if (menu, "0") not in pressed else ""
                if not digit:
                    break
                pressed.add((menu, digit))
                self.route.append(f"ivr:{digit}")
                await self.line.send_digits(digit)
            elif kind == "screening":
                self.route.append("screening")
                await self.line.say(f"{say.greeting(self.task)} {say.purpose(self.task.objective)}")
            event = await self._hear(self.brain.hold_wait, say.SILENT_HELLO)
        raise _Stuck

    def _topic(self) -> str:
        words = [self.task.objective] + [f"{say.field_words(f.name)} {f.description or ''}" for f in self.task.fields]
        return " ".join(words)

    async def _with_person(self) -> str:
        opener = f"{say.greeting(self.task)} {say.purpose(self.task.objective)}"
        if not self.task.fields:
            reply = await self._exchange(f"{opener} {say.NO_FIELDS_ASK}", say.NO_FIELDS_ASK)
            if hear.is_who_is_this(reply):
                reply = await self._exchange(f"{say.WHO_AGAIN.format(account=self.task.account_name)} "
                                             f"{say.purpose(self.task.objective)}")
            situation = hear.situation(reply)
            if situation:
                raise _EndEarly(situation)
            if hear.is_refusal(reply) or hear.is_unknown(reply) or hear.is_who_is_this(reply):
                await self._goodbye(say.BYE_REFUSED if hear.is_refusal(reply) else say.BYE_PARTIAL)
                return OBJECTIVE_UNREACHABLE
            self.reply = reply
            await self._goodbye(say.BYE_MET)
            return OBJECTIVE_MET
        refusals_in_a_row = 0
        for field in self.task.fields:
            outcome = await self._ask(field, opener)
            opener = ""
            refusals_in_a_row = refusals_in_a_row + 1 if outcome == "refused" else 0
            if refusals_in_a_row >= 2:
                break
        if any(v is not None for v in self.values.values()):
            await self._confirm()
        if all(v is not None for v in self.values.values()):
            await self._goodbye(say.BYE_MET)
            return OBJECTIVE_MET
        await self._goodbye(say.BYE_REFUSED if self.refused else say.BYE_PARTIAL)
        return OBJECTIVE_UNREACHABLE

    async def _ask(self, field: FieldSpec, lead: str = "", attempts: int = 2) -> str:
        """Ask for one field: "obtained", "refused" or "missing"."""
        question = say.question_for(field)
        text = f"{lead} {question}".strip()
        while True:
            reply = await self._exchange(text, question)
            situation = hear.situation(reply)
            if situation and situation != "callback":
                raise _EndEarly(situation)
            if hear.is_spelling_request(reply) and self.spell_left > 0:
                self.spell_left -= 1
                text = say.spelling(reply, self.task.objective)
                continue
            if hear.is_who_is_this(reply) and self.who_left > 0:
                self.who_left -= 1
                text = (f"{say.WHO_AGAIN.format(account=self.task.account_name)} "
                        f"{say.purpose(self.task.objective)} {question}")
                continue
            if hear.is_refusal(reply):
                self.refused.append(field.name)
                return "refused"
            value = self._value(field, reply, question)
            if value is None and self.brain.fallback and not hear.is_unknown(reply):
                value = await asyncio.to_thread(self.brain.fallback, field, question, reply)
            if situation == "callback" and (
                    value is None or (field.type == "boolean" and hear.yes_no(reply) is None)
                    or not hear.content_words(reply) & hear.question_words(field, question)):
                raise _EndEarly(situation)  # "she'll call you back": an answer only if they gave one anyway
            if value is not None:
                self.values[field.name] = value
                return "obtained"
            if self.question_unheard and self.repeats_left > 0:
                self.repeats_left -= 1  # asked again in full; it does not count as an attempt
                text = question
                continue
            attempts -= 1
            if attempts <= 0:
                return "missing"
            text = say.reask(question, they_do_not_know=hear.is_unknown(reply))

    async def _confirm(self) -> None:
        obtained = [f for f in self.task.fields if self.values[f.name] is not None]
        reply = await self._exchange(say.confirmation((f.name, self.values[f.name]) for f in obtained))
        self.confirmed = hear.readback_verdict(reply)
        if self.confirmed is None and not any(
                self._value(f, reply) is not None for f in obtained):
            reply = await self._exchange(say.CONFIRM_AGAIN)  # no yes, no no, no value: ask once more
            self.confirmed = hear.readback_verdict(reply)
        if self.confirmed is None and any(
                self._value(f, reply) not in (None, self.values[f.name])
                for f in obtained):
            self.confirmed = False  # no yes, and a different value: a correction
            reply = f"No. {reply}"
        if self.confirmed is not False:
            return
        # The correction often comes in the same breath ("No, it opens at ten"); else ask again once.
        correction = hear.after_dispute(reply)
        previous = {f.name: self.values[f.name] for f in obtained}
        fresh_values = {}
        # with several values read back, a correction counts only for the field(s) it talks about most
        overlap = {f.name: len(hear.content_words(correction) & hear.question_words(f, say.question_for(f)))
                   for f in obtained}
        for field in obtained:
            related = len(obtained) == 1 or 0 < overlap[field.name] == max(overlap.values())
            fresh = (self._value(field, correction)
                     if correction and related else None)
            if fresh is None and field.type == "boolean" and len(obtained) == 1 and not correction:
                fresh = not previous[field.name]  # a lone yes/no read back and denied is the other answer
            if fresh is not None and fresh != previous[field.name]:
                fresh_values[field.name] = fresh
        if fresh_values:
            self.values.update(fresh_values)  # they corrected what was wrong; the rest stands
            return
        lead = say.RECHECK
        for field in obtained:
            self.values[field.name] = None
            await self._ask(field, lead, attempts=1)
            lead = ""
            if self.values[field.name] == previous[field.name]:
                # said again unchanged after they disputed it: we cannot tell which is right
                self.values[field.name] = None
                self.disputed.append(field.name)

    def _value(self, field: FieldSpec, text: str, question: str | None = None) -> Any:
        """``text`` read as the field's value, on the callee's calendar and after what the call already said."""
        return parse_value(field, text, question or say.question_for(field), self.today, self.task.objective)

    async def _goodbye(self, text: str) -> None:
        await etiquette.goodbye(self.line, text, self.brain.bye_wait)

    async def _transfer(self) -> str:
        """Hand the call to a person; if nobody takes it, apologise and say goodbye."""
        self.reached_human, self.answered_by = True, self.answered_by or "human"
        spoken = await self.line.say(transfer.HANDING_OVER)
        if spoken.interrupted:  # they talked over it: once they are done, say it again so they know
            if isinstance(await self.line.listen(self.brain.reply_wait), HangUp):
                await self.line.hangup()
                return CALLEE_HUNG_UP
            await self.line.say(transfer.HANDING_OVER)
        if await transfer.hand_over(self.line.transfer, self.task, None):
            self.situation = "transferred"
            return EndReason.TRANSFERRED
        await self._goodbye(f"{transfer.NOBODY_REACHED} {say.BYE_PARTIAL}")
        return OBJECTIVE_UNREACHABLE
