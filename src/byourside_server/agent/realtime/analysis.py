"""The values a realtime call obtained, read from its transcript without a language model.

With an LLM configured, a realtime call is analysed by the LLM brain like any
other. Without one, the offline agent's analysis runs, and it needs the values
handed to it: the offline agent knows its own questions, but a realtime model
words them its own way. Here a field's answer is in the callee's turns after
an agent turn that asks about the field (it names one of the field's words),
up to the agent's next turn, parsed with the offline agent's value parser
(agent/understanding); the last such answer wins, as a correction does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from byourside_server.agent.offline import NOTES_EXTRACTED, NOTES_REACHED_HUMAN, OfflineBrain, parse_value
from byourside_server.domain import CallTask, FieldSpec, Turn

_GENERIC = frozenset("the and for with what whether which when how much many does they their there from about this "
                     "that have has are was were will would could should you your any not".split())


def topic_words(field: FieldSpec) -> set[str]:
    """The words that show a question is about ``field``: its name's parts and its description's content words."""
    name = re.sub(r"([a-z])([A-Z])", r"\1 \2", field.name).replace("_", " ").replace("-", " ")
    text = f"{name} {field.description or ''}".lower()
    return {w for w in re.findall(r"[a-z]+", text) if len(w) >= 3 and w not in _GENERIC}


def _asks_about(question: str, words: set[str]) -> bool:
    said = set(re.findall(r"[a-z]+", question.lower()))
    return any(w in said or (len(w) > 5 and any(s.startswith(w[:5]) for s in said)) for w in words)


def transcript_values(task: CallTask, turns: Sequence[Turn]) -> dict[str, Any]:
    today = datetime.now(timezone.utc).date()
    found: dict[str, Any] = {f.name: None for f in task.fields}
    for field in task.fields:
        words = topic_words(field)
        question: str | None = None  # the agent's last turn, when it asks about the field
        for turn in turns:
            if turn.speaker == "agent":
                question = turn.text if _asks_about(turn.text, words) else None
            elif question is not None:  # every callee turn up to our next one answers it ("Let me check. ... Yes")
                value = parse_value(field, turn.text, question, today)
                if value is not None:
                    found[field.name] = value
    return found


def offline_notes(task: CallTask, turns: Sequence[Turn]) -> dict[str, Any]:
    """What the offline agent's ``analyze`` needs to know of a call it did not conduct."""
    return {NOTES_EXTRACTED: transcript_values(task, turns),
            NOTES_REACHED_HUMAN: any(t.speaker == "contact" for t in turns)}


__all__ = ["OfflineBrain", "offline_notes", "topic_words", "transcript_values"]
