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


class EndReason(enum.StrEnum):
    """Why a call ended: the call object's ``endReason`` (docs/api.md).

    A ``StrEnum``, so a member compares equal to, and prints as, its wire value. Failures
    of one part are ``error:<token>``: the named ones below, or ``EndReason.error(token)``
    for a carrier's own token (e.g. ``error:sip_timeout``).
    """

    # Reported by a brain
    OBJECTIVE_MET = "objective_met"
    OBJECTIVE_UNREACHABLE = "objective_unreachable"
    CALLEE_HUNG_UP = "callee_hung_up"
    NO_RESPONSE = "no_response"
    VOICEMAIL = "voicemail"
    TRANSFERRED = "transferred"  # (ext) handed to a person at the request's ``transferTo``
    # Decided by the runtime, the carrier or the store
    MAX_DURATION = "max_duration"
    CANCELED = "canceled"
    WORKER_LOST = "worker_lost"  # the worker holding the call vanished after dialling began
    SUPPRESSED = "suppressed"  # (ext) the number joined the do-not-call list before the call was dialled
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    DECLINED = "declined"
    ERROR_CARRIER = "error:carrier"
    ERROR_DIAL = "error:dial"
    ERROR_AGENT = "error:agent"
    ERROR_LLM_UNAVAILABLE = "error:llm_unavailable"

    @staticmethod
    def error(token: str) -> str:
        """``error:<token>``: a failure named by the part that failed."""
        return f"error:{token}"


class AnsweredBy(enum.StrEnum):
    """Who answered a call: the call object's ``answeredBy`` (ext, docs/api.md)."""

    HUMAN = "human"
    MACHINE = "machine"  # voicemail, an answering machine, a call screener
    IVR = "ivr"  # a phone menu
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class AnswerVerdict:
    """Who answered, and what says so: ``evidence`` is JSON whose ``source`` names the judge
    ("carrier", "simulator", "conversation", "cadence") beside that judge's own figures."""

    kind: AnsweredBy
    evidence: Mapping[str, Any]

    @property
    def source(self) -> str:
        return str(self.evidence.get("source", ""))


# The per-turn stages of a call's ``latency`` report, as keys of its JSON (voice/latency.py writes it).
LATENCY_STAGES: tuple[str, ...] = ("endpointingMs", "sttMs", "llmFirstTokenMs", "ttsFirstAudioMs", "totalMs")


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
    interrupted: bool = False  # (ext) an agent turn the callee cut short: ``text`` is only what they heard

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"speaker": self.speaker, "text": self.text, "startMs": self.start_ms,
                                 "endMs": self.end_ms}
        if self.interrupted:
            shown["interrupted"] = True
        return shown


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
    account_name: str  # whom the callee hears the call is for: the account's display name
    max_duration_seconds: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    voicemail_message: str | None = None  # left after the tone when voicemail answers; None: hang up silently
    transfer_to: tuple[str, ...] = ()  # (ext) E.164 numbers of people the call may be handed to, in order
    transfer_mode: str = "cold"  # "cold": connect at once; "warm": brief the person first
    # (ext) the account's AI disclosure wording ("{name}": the display name); None: the standard one
    ai_disclosure: str | None = None
    recording_notice: bool = False  # (ext) say at the start that the call is recorded (compliance/consent.py)
