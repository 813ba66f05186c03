"""What a finished call's transcript says, read by the offline agent's rules: the value a reply
gives for a field (``parse_value``), the contact turn that states each value (``evidence``), and
the values re-read from the transcript when the conversation left no notes (``extract_from_turns``,
e.g. the runtime ended the call itself on its maximum duration)."""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping, Sequence

from byourside_server.agent import etiquette
from byourside_server.agent import phrases as say
from byourside_server.agent import understanding as hear
from byourside_server.agent.call_date import local_date
from byourside_server.domain import CallTask, FieldSpec, Turn


def parse_value(field: FieldSpec, text: str, question: str | None = None, today: date | None = None,
                objective: str = "") -> Any:
    """A reply as a value of the field's type, or None when it holds no answer (a keypad menu is none).
    ``today`` is the call's date, for dates said relative to it; ``objective`` what the call already said."""
    if len(say.ivr_options(text)) >= 2:
        return None
    return hear.extract(field, text, question, today, objective)


def evidence(task: CallTask, turns: Sequence[Turn], extracted: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """For each obtained value, the contact turn that states it: {quote, turnIndex}. The last answer to
    our question for the field wins; failing that, the last contact turn that states the value. A bare
    "yes, that's right" to our read-back, or an "okay" on the way out, is not evidence: the words that
    gave the value are."""
    found: dict[str, dict[str, Any]] = {}
    today = local_date(task.to)
    for field in task.fields:
        value = extracted.get(field.name)
        if value is None:
            continue
        question = say.question_for(field)
        answers, others = [], []
        for index, turn in enumerate(turns):
            if turn.speaker != "contact":
                continue
            prompt = turns[index - 1].text if index > 0 and turns[index - 1].speaker == "agent" else ""
            if prompt.startswith("Just to confirm") and hear.readback_verdict(turn.text) is not False:
                continue
            if etiquette.coerce(field, parse_value(field, turn.text, question, today, task.objective)) == value:
                (answers if question in prompt else others).append(index)
        chosen = (answers or others or [None])[-1]
        if chosen is not None:
            found[field.name] = {"quote": turns[chosen].text, "turnIndex": chosen}
    return found


def extract_from_turns(task: CallTask, turns: Sequence[Turn]) -> dict[str, Any]:
    """Values from the transcript: the reply after each question we asked (last one wins)."""
    found: dict[str, Any] = {}
    for field in task.fields:
        question = say.question_for(field)
        for i, turn in enumerate(turns[:-1]):
            after = turns[i + 1]
            if turn.speaker == "agent" and question in turn.text and after.speaker == "contact":
                value = parse_value(field, after.text, question, local_date(task.to), task.objective)
                if value is not None:
                    found[field.name] = value
    return found
