"""Core vocabulary shared by every layer: statuses, field specs, turns, call tasks."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping


class CallStatus(str, enum.Enum):
    QUEUED = "queued"
    DIALING = "dialing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    DECLINED = "declined"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {CallStatus.COMPLETED, CallStatus.NO_ANSWER, CallStatus.VOICEMAIL, CallStatus.DECLINED, CallStatus.FAILED}
)
ACTIVE_STATUSES = frozenset({CallStatus.QUEUED, CallStatus.DIALING, CallStatus.IN_PROGRESS})

_RANK = {CallStatus.QUEUED: 0, CallStatus.DIALING: 1, CallStatus.IN_PROGRESS: 2}


def can_transition(current: CallStatus, new: CallStatus) -> bool:
    """Statuses only move forward; a terminal status never changes again."""
    if current.terminal:
        return False
    if new.terminal:
        return True
    return _RANK[new] > _RANK[current]


FieldType = Literal["string", "boolean", "number"]
FIELD_TYPES: tuple[str, ...] = ("string", "boolean", "number")


@dataclass(frozen=True)
class FieldSpec:
    """A value the caller wants extracted from the conversation."""

    name: str
    type: FieldType = "string"
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "description": self.description}


Speaker = Literal["agent", "contact"]


@dataclass(frozen=True)
class Turn:
    """One utterance on the call; times are milliseconds since the call was answered."""

    speaker: Speaker
    text: str
    start_ms: int
    end_ms: int

    def to_json(self) -> dict[str, Any]:
        return {"speaker": self.speaker, "text": self.text, "startMs": self.start_ms, "endMs": self.end_ms}


def transcript_text(turns: list[Turn] | tuple[Turn, ...]) -> str:
    """The spec's transcript string: one line per turn, 'Agent: ...' / 'Contact: ...'."""
    return "\n".join(f"{'Agent' if t.speaker == 'agent' else 'Contact'}: {t.text}" for t in turns)


@dataclass(frozen=True)
class CallTask:
    """Everything the agent brain may know about the call it is conducting."""

    call_id: str
    to: str
    from_number: str
    objective: str
    context: str | None
    fields: tuple[FieldSpec, ...]
    language: str
    voice: str
    account_name: str
    max_duration_seconds: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    voicemail_message: str | None = None  # left after the tone when voicemail answers; None: hang up silently
