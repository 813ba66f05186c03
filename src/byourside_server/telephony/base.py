"""The telephony port: dial a number, get back an outcome and, when answered, a Line or a media channel.

A Line is a live, answered call as seen by the agent: it can speak, listen for
the next thing the callee does, send DTMF digits and hang up. Text lines (the
simulator) carry words directly. An audio carrier (SIP/RTP, a WebSocket media
stream) answers with a ``MediaChannel`` (telephony/media.py) instead, and the
composition wraps it in the voice engine (voice/engine.py), which gives the
brains the same Line. Times on a line are milliseconds since it was answered,
on the line's own timeline (the simulator may compress real time).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from byourside_server.domain import AnswerVerdict
from byourside_server.telephony.transfer import TransferFailed

if TYPE_CHECKING:
    from byourside_server.telephony.media import MediaChannel
    from byourside_server.telephony.routes import CarrierRoutes

__all__ = ["Beep", "CalleeHungUp", "DialOutcome", "DialRequest", "DialResult", "HangUp", "Line", "LineEvent",
           "Silence", "Speech", "Spoken", "Telephony", "TransferFailed"]


@dataclass(frozen=True)
class DialRequest:
    call_id: str
    to: str
    from_number: str
    ring_timeout_seconds: float
    language: str
    voice: str
    record: bool = True  # False: the line writes no audio at all (the account does not record calls)


class DialResult(str, enum.Enum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"  # rang out
    BUSY = "busy"
    DECLINED = "declined"  # callee rejected the call
    FAILED = "failed"  # carrier/trunk/network failure


@dataclass(frozen=True)
class DialOutcome:
    result: DialResult
    line: "Line | None" = None  # answered by a text line (the simulator), or the voice engine's line
    reason: str | None = None  # short machine token, e.g. "carrier_unreachable"
    media: "MediaChannel | None" = None  # answered by an audio carrier, before the voice engine wraps it


# What ``Line.listen`` returns.


@dataclass(frozen=True)
class Speech:
    """The callee (person, machine or IVR) said something."""

    text: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Silence:
    """Nothing was said before the listen timeout."""

    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Beep:
    """An answering machine's record tone."""

    at_ms: int


@dataclass(frozen=True)
class HangUp:
    """The far end hung up; the line is closed."""

    at_ms: int


LineEvent = Speech | Silence | Beep | HangUp


@dataclass(frozen=True)
class Spoken:
    """What became of something the agent said.

    ``interrupted``: the callee cut it short (barge-in) and only ``heard``
    reached them: the words whose audio had left before the interruption.
    When not interrupted ``heard`` is None: all of it was spoken.
    """

    start_ms: int
    end_ms: int
    interrupted: bool = False
    heard: str | None = None

    def heard_of(self, text: str) -> str:
        """The part of ``text`` (what was asked to be said) that reached the callee."""
        return self.heard if self.interrupted and self.heard is not None else text


class CalleeHungUp(Exception):
    """Raised by ``Line.say``/``send_digits`` when the far end has hung up."""

    def __init__(self, at_ms: int) -> None:
        super().__init__("callee hung up")
        self.at_ms = at_ms


class Line(ABC):
    """An answered call."""

    @abstractmethod
    async def say(self, text: str) -> Spoken:
        """Speak ``text`` to the callee; returns once it has been spoken, or cut short by the callee.

        ``Spoken.interrupted`` and ``Spoken.heard`` say how much was heard.
        Raises CalleeHungUp if the far end hangs up before or while speaking.
        """

    def prepare(self, text: str) -> None:
        """``text`` will be said soon (an opener known before the callee speaks): an audio line renders its
        first sentence now, so that ``say`` can start at once. A text line has nothing to prepare."""

    @property
    def streams_speech(self) -> bool:
        """Whether ``say_stream`` starts speaking before the text is complete (audio lines do)."""
        return False

    async def say_stream(self, pieces: AsyncIterator[str]) -> tuple[str, Spoken]:
        """Speak text that arrives in pieces (a model's streamed tokens); returns the whole text and its fate.

        Audio lines start speaking from the first clause; this default waits for all of it and says it.
        """
        text = "".join([piece async for piece in pieces]).strip()
        if not text:
            now = self.elapsed_ms()
            return "", Spoken(now, now)
        return text, await self.say(text)

    @abstractmethod
    async def listen(self, timeout_seconds: float) -> LineEvent:
        """Wait for the callee's next utterance (or silence, a beep, a hang-up).

        After a HangUp has been returned every further call returns HangUp again.
        """

    @abstractmethod
    async def send_digits(self, digits: str) -> None:
        """Send DTMF digits (0-9, *, #)."""

    @abstractmethod
    async def hangup(self) -> None:
        """End the call from our side. Idempotent."""

    async def transfer(self, to: str, brief: str | None = None) -> None:
        """Hand the callee to the person at ``to`` (E.164): cold when ``brief`` is None, else warm (the person
        hears ``brief`` before being connected).

        Returns once the call is theirs: the line is then over for us, and ``hangup`` no longer ends the
        call. Raises ``TransferFailed`` when the person could not be reached (the callee is still here).
        """
        raise TransferFailed("unsupported")

    @abstractmethod
    def elapsed_ms(self) -> int:
        """Milliseconds since answer on this line's timeline."""

    def recording_path(self) -> str | None:
        """Path of the call's audio recording, complete once ``hangup`` has returned (None: not recorded)."""
        return None

    def note_model_latency(self, first_token_ms: float | None) -> None:
        """The brain's model took this long to its first token for the reply about to be said.

        Audio lines count it in the turn's latency; text lines ignore it.
        """

    def latency_report(self) -> dict | None:
        """Per-turn latency figures of an audio line (the call's ``latency``); None for text lines."""
        return None

    def answering_machine_hint(self) -> str | None:
        """What the cadence of the answer suggests: "human", "machine", "unknown", or None (not decided,
        or a text line). A hint for the brain beside the transcript (voice/amd.py)."""
        return None

    def answered_by(self) -> AnswerVerdict | None:
        """Who answered, as the line knows it: the carrier's answering-machine detection, the cadence of
        the answer (voice/amd.py) or the simulator's scenario; None when the line has no verdict."""
        return None


class Telephony(ABC):
    """A way to place outbound calls."""

    name: str = "telephony"

    @abstractmethod
    async def dial(self, request: DialRequest) -> DialOutcome:
        """Place the call and wait until it is answered or has definitively failed.

        Cancelling the awaiting task must abandon the attempt (send CANCEL, stop
        ringing) and leave nothing running.
        """

    async def aclose(self) -> None:
        """Release provider resources (sockets, threads)."""

    def carrier_routes(self) -> "CarrierRoutes | None":
        """HTTP/WebSocket routes the carrier calls us back on (telephony/routes.py); None: it needs none."""
        return None
