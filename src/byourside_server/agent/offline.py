"""The offline agent: a deterministic brain that needs no network and no model.

It works through a fixed policy. Wait for the first words and decide what
answered: a voicemail greeting (hang up at once, before the beep, leaving no
message), an IVR menu (press the option whose words best match the objective and
fields, else the operator, else 0), a call-screening service (say who is calling
and why) or a person. With a person: disclose that it is an AI and for whom,
state the objective, ask for each field in turn (once more if the reply held no
answer, never again after a refusal), read the values back once, say goodbye and
hang up. Two refusals in a row end the questions early.

``ConversationEnd.answered_by`` is what picked up first: an IVR or screener
stays "ivr"/"screening" even after a person comes on (``reached_human`` in the
notes says whether one did), and becomes "voicemail" if it led to voicemail.
``ConversationEnd.notes`` carries what was parsed while talking (keys below);
``analyze`` turns them into the client's outcome. When the notes are missing
(the runtime ended the call itself, e.g. on max duration) ``analyze`` re-reads
the transcript instead.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, Mapping, Sequence

from byourside_server.agent import phrases as say
from byourside_server.agent.base import (
    CALLEE_HUNG_UP, NO_RESPONSE, OBJECTIVE_MET, OBJECTIVE_UNREACHABLE, VOICEMAIL_DETECTED,
    Analysis, Brain, ConversationEnd,
)
from byourside_server.agent.parsing import parse_boolean, parse_number, parse_string
from byourside_server.domain import CallTask, FieldSpec, Turn
from byourside_server.telephony.base import Beep, CalleeHungUp, HangUp, Line, Silence, Speech

NOTES_EXTRACTED = "extracted"  # {field name: value parsed during the call, or None}
NOTES_REFUSED = "refused"  # field names the callee declined to share
NOTES_ROUTE = "route"  # gatekeepers passed, e.g. ["ivr:1"] or ["screening"]
NOTES_REACHED_HUMAN = "reached_human"  # a person spoke with us
NOTES_CONFIRMED = "confirmed"  # reply to the read-back: True, False (then re-asked) or None
NOTES_REPLY = "reply"  # the person's answer to the objective when there were no fields
NOTES_MESSAGE_LEFT = "message_left"  # a voicemail message was left after the tone


class _HungUp(Exception):
    pass


class _NoResponse(Exception):
    pass


class _Stuck(Exception):
    """Menus or screeners that never lead anywhere."""


def parse_value(field: FieldSpec, text: str) -> Any:
    """A reply as a value of the field's type, or None when it holds no answer."""
    if say.is_refusal(text) or say.is_unknown(text) or say.is_who_is_this(text):
        return None
    if field.type == "boolean":
        return parse_boolean(text)
    if field.type == "number":
        return parse_number(text)
    return parse_string(text)


class OfflineBrain(Brain):
    name = "offline"

    def __init__(self, *, answer_wait_seconds: float = 5.0, reply_wait_seconds: float = 8.0,
                 hold_wait_seconds: float = 30.0, bye_wait_seconds: float = 3.0) -> None:
        self.answer_wait = answer_wait_seconds
        self.reply_wait = reply_wait_seconds
        self.hold_wait = hold_wait_seconds
        self.bye_wait = bye_wait_seconds

    async def converse(self, task: CallTask, line: Line) -> ConversationEnd:
        return await _Conversation(self, task, line).run()

    async def analyze(self, task: CallTask, turns: Sequence[Turn], end: ConversationEnd) -> Analysis:
        notes = end.notes
        raw = notes.get(NOTES_EXTRACTED)
        if not isinstance(raw, Mapping):
            raw = _extract_from_turns(task, turns)
        extracted = {f.name: _coerce(f, raw.get(f.name)) for f in task.fields}
        reached = notes.get(NOTES_REACHED_HUMAN)
        if reached is None:
            reached = end.answered_by == "human" or any(
                t.speaker == "contact" and say.classify_answer(t.text) == "human" for t in turns)
        if end.reason == OBJECTIVE_MET:
            met: bool | None = True
        else:
            met = False if reached and end.answered_by != "voicemail" else None
        summary = say.summary(
            reason=end.reason, answered_by=end.answered_by, reached_human=bool(reached),
            route=list(notes.get(NOTES_ROUTE) or []), extracted=extracted, refused=list(notes.get(NOTES_REFUSED) or []),
            confirmed=notes.get(NOTES_CONFIRMED), reply=notes.get(NOTES_REPLY) if not task.fields else None,
        )
        if notes.get(NOTES_MESSAGE_LEFT):
            summary = summary.replace(say.VOICEMAIL_NO_MESSAGE, "The agent left the requested message after the tone.")
        return Analysis(summary=summary, extracted=extracted, objective_met=met, evidence=_evidence(task, turns, extracted))


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

    async def run(self) -> ConversationEnd:
        try:
            reason = await self._talk()
        except (_HungUp, CalleeHungUp):
            reason = CALLEE_HUNG_UP
            await self.line.hangup()
        except _Stuck:
            reason = OBJECTIVE_UNREACHABLE
            await self.line.hangup()
        except _NoResponse:
            reason = NO_RESPONSE
            with suppress(CalleeHungUp):
                await self.line.say(say.BYE_SILENT)
            await self.line.hangup()
        notes = {NOTES_EXTRACTED: dict(self.values), NOTES_REFUSED: list(self.refused), NOTES_ROUTE: list(self.route),
                 NOTES_REACHED_HUMAN: self.reached_human, NOTES_CONFIRMED: self.confirmed, NOTES_REPLY: self.reply,
                 NOTES_MESSAGE_LEFT: self.message_left}
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

    async def _exchange(self, text: str) -> str:
        """Say ``text`` and return the reply, waiting through "please hold" and the like."""
        await self.line.say(text)
        timeout = self.brain.reply_wait
        for _ in range(4):
            event = await self._hear(timeout, say.NUDGE)
            if isinstance(event, Speech) and not say.is_hold(event.text):
                return event.text
            timeout = self.brain.hold_wait
        raise _NoResponse

    # -- the call --

    async def _talk(self) -> str:
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
        message = self.task.voicemail_message
        if not message:
            return
        with suppress(CalleeHungUp):
            for _ in range(4):
                if self.tone_heard:
                    break
                event = await self.line.listen(self.brain.answer_wait)
                if isinstance(event, HangUp):
                    return
                self.tone_heard = isinstance(event, (Beep, Silence))
            if self.tone_heard:
                await self.line.say(f"{say.disclosure(self.task.account_name)} {message.strip()}")
                self.message_left = True

    async def _reach_someone(self) -> str | None:
        """Get past menus and screeners; the person's first words, or None for voicemail."""
        event = await self._hear(self.brain.answer_wait, say.SILENT_HELLO, patience=2)
        pressed: set[str] = set()
        for _ in range(6):
            kind = "voicemail" if isinstance(event, Beep) else say.classify_answer(event.text)
            if kind != "hold":
                self.answered_by = self.answered_by or kind
            if kind == "voicemail":
                self.tone_heard = isinstance(event, Beep)
                return None
            if kind == "human":
                return event.text  # type: ignore[union-attr]
            if kind == "ivr":
                digit = say.choose_ivr_digit(say.ivr_options(event.text), self._topic())  # type: ignore[union-attr]
                if digit in pressed:
                    digit = "0" if "0" not in pressed else ""
                if not digit:
                    break
                pressed.add(digit)
                self.route.append(f"ivr:{digit}")
                await self.line.send_digits(digit)
            elif kind == "screening":
                self.route.append("screening")
                await self.line.say(f"{say.disclosure(self.task.account_name)} {say.purpose(self.task.objective)}")
            event = await self._hear(self.brain.hold_wait, say.SILENT_HELLO)
        raise _Stuck

    def _topic(self) -> str:
        words = [self.task.objective] + [f"{say.field_words(f.name)} {f.description or ''}" for f in self.task.fields]
        return " ".join(words)

    async def _with_person(self) -> str:
        opener = f"{say.disclosure(self.task.account_name)} {say.purpose(self.task.objective)}"
        if not self.task.fields:
            reply = await self._exchange(f"{opener} {say.NO_FIELDS_ASK}")
            if say.is_who_is_this(reply):
                reply = await self._exchange(f"{say.WHO_AGAIN.format(account=self.task.account_name)} "
                                             f"{say.purpose(self.task.objective)}")
            if say.is_refusal(reply) or say.is_unknown(reply) or say.is_who_is_this(reply):
                await self._goodbye(say.BYE_REFUSED if say.is_refusal(reply) else say.BYE_PARTIAL)
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
            reply = await self._exchange(text)
            if say.is_who_is_this(reply) and self.who_left > 0:
                self.who_left -= 1
                text = (f"{say.WHO_AGAIN.format(account=self.task.account_name)} "
                        f"{say.purpose(self.task.objective)} {question}")
                continue
            if say.is_refusal(reply):
                self.refused.append(field.name)
                return "refused"
            value = parse_value(field, reply)
            if value is not None:
                self.values[field.name] = value
                return "obtained"
            attempts -= 1
            if attempts <= 0:
                return "missing"
            text = say.reask(question, they_do_not_know=say.is_unknown(reply))

    async def _confirm(self) -> None:
        obtained = [f for f in self.task.fields if self.values[f.name] is not None]
        reply = await self._exchange(say.confirmation((f.name, self.values[f.name]) for f in obtained))
        self.confirmed = parse_boolean(reply)
        if self.confirmed is False:
            # Re-ask each value once; a disputed value with no new answer is dropped.
            lead = say.RECHECK
            for field in obtained:
                self.values[field.name] = None
                await self._ask(field, lead, attempts=1)
                lead = ""

    async def _goodbye(self, text: str) -> None:
        with suppress(CalleeHungUp):
            await self.line.say(text)
            await self.line.listen(self.brain.bye_wait)  # let them say goodbye too
        await self.line.hangup()


def _coerce(field: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    if field.type == "boolean":
        return value if isinstance(value, bool) else parse_boolean(str(value))
    if field.type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return parse_number(str(value))
        return int(value) if float(value).is_integer() else float(value)
    return str(value)


def _evidence(task: CallTask, turns: Sequence[Turn], extracted: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """For each obtained value, the last contact turn that states it: {quote, turnIndex}."""
    found: dict[str, dict[str, Any]] = {}
    for field in task.fields:
        value = extracted.get(field.name)
        if value is None:
            continue
        for index in range(len(turns) - 1, -1, -1):
            turn = turns[index]
            if turn.speaker == "contact" and _coerce(field, parse_value(field, turn.text)) == value:
                found[field.name] = {"quote": turn.text, "turnIndex": index}
                break
    return found


def _extract_from_turns(task: CallTask, turns: Sequence[Turn]) -> dict[str, Any]:
    """Values from the transcript: the reply after each question we asked (last one wins)."""
    found: dict[str, Any] = {}
    for field in task.fields:
        question = say.question_for(field)
        for i, turn in enumerate(turns[:-1]):
            after = turns[i + 1]
            if turn.speaker == "agent" and question in turn.text and after.speaker == "contact":
                value = parse_value(field, after.text)
                if value is not None:
                    found[field.name] = value
    return found
