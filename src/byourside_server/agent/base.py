"""The agent brain port.

A brain conducts one answered call over a Line (``converse``) and then turns the
transcript into the call's outcome (``analyze``). The runtime records every
turn itself (it wraps the Line), enforces the maximum duration and cancellation,
and chooses the terminal status from ``ConversationEnd.answered_by``. A brain
never touches the store, HTTP or telephony details.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

from byourside_server.domain import CallTask, Turn
from byourside_server.telephony.base import Line

AnsweredBy = Literal["human", "voicemail", "ivr", "screening", "unknown"]

# End reasons a brain may report (the runtime adds max_duration, canceled, error:*).
OBJECTIVE_MET = "objective_met"
OBJECTIVE_UNREACHABLE = "objective_unreachable"
CALLEE_HUNG_UP = "callee_hung_up"
NO_RESPONSE = "no_response"
VOICEMAIL_DETECTED = "voicemail"


@dataclass(frozen=True)
class ConversationEnd:
    """How the conversation ended, from the brain's point of view.

    ``notes`` is private to the brain: whatever it wants to hand its own
    ``analyze`` (for example values it parsed while talking). ``failed`` means
    the brain itself could not go on (e.g. its model stayed unreachable): the
    runtime then records status ``failed`` with ``reason`` as the end reason.
    """

    reason: str
    answered_by: AnsweredBy = "human"
    notes: Mapping[str, Any] = field(default_factory=dict)
    failed: bool = False


@dataclass(frozen=True)
class Analysis:
    """The call's outcome as shown to the client."""

    summary: str
    extracted: Mapping[str, Any]  # every requested field name present; None when not obtained
    objective_met: bool | None
    # field name -> {"quote": transcript words, "turnIndex": index into turns} for each obtained value
    evidence: Mapping[str, Mapping[str, Any]] | None = None


class Brain(ABC):
    name: str = "brain"

    @abstractmethod
    async def converse(self, task: CallTask, line: Line) -> ConversationEnd:
        """Talk with whoever answered until the objective is met or cannot be met.

        Should say goodbye and call ``line.hangup()`` before returning. May let
        ``CalleeHungUp`` escape; the runtime treats that as ``callee_hung_up``.
        """

    async def aclose(self) -> None:
        """Release provider resources (HTTP clients, models) at shutdown."""

    @abstractmethod
    async def analyze(self, task: CallTask, turns: Sequence[Turn], end: ConversationEnd) -> Analysis:
        """Summarise the call and extract the requested fields from the transcript."""
