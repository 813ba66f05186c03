"""The realtime-model slot: a speech-to-speech model conducting a call on the audio itself.

A cascaded brain (offline, llm) talks through the text face of a call (a
``Line``: the voice engine turns audio into turns and text into speech). A
realtime model (OpenAI Realtime, Gemini Live, ...) hears and speaks audio
directly, decides when to answer with its own turn detection, calls tools,
and reports transcripts of both sides. It sits beside the text brains: a
``RealtimeBrain`` is a ``Brain`` that converses over the call's media channel
(telephony/media.py) instead of a Line, and still ``analyze``s the transcript
it reports afterwards like any brain.

This module is the port only; no adapter implements it yet. What an adapter
must do, and what the composition owes it:

- ``RealtimeModel.connect`` opens one session per call (the system prompt and
  tools come from the task, as for the LLM brain: agent/llm/prompts.py).
- The conversation loop (to be written with the first adapter) pumps the
  channel's inbound frames into ``send_audio`` and the session's ``AudioOut``
  into ``MediaChannel.play``. When the model's ``CalleeSpeechStarted`` arrives
  while we play, it clears the channel and calls ``truncate`` with how much of
  the reply had actually left (``Playback.played_ms``), so the model's history
  keeps only what was heard, as the cascaded path does.
- ``ToolCallRequested`` is answered with ``send_tool_result``; ``end_call``
  and ``press_digits`` act on the channel (``hangup``, ``send_digits``).
- ``Transcript`` events of both sides become the call's turns (agent turns
  marked ``interrupted`` when truncated).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from byourside_server.agent.base import Brain, ConversationEnd
from byourside_server.domain import CallTask

if TYPE_CHECKING:
    from byourside_server.telephony.media import MediaChannel


@dataclass(frozen=True)
class AudioOut:
    """Model speech to play: 8 kHz int16 PCM (the adapter resamples from the model's rate)."""

    pcm: bytes
    response_id: str


@dataclass(frozen=True)
class Transcript:
    speaker: str  # "agent" or "contact"
    text: str
    final: bool  # False: an interim guess that a later event replaces


@dataclass(frozen=True)
class CalleeSpeechStarted:
    """The model's own turn detection heard the callee begin (barge-in if we are speaking)."""


@dataclass(frozen=True)
class ToolCallRequested:
    call_id: str
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class ResponseDone:
    response_id: str


RealtimeEvent = AudioOut | Transcript | CalleeSpeechStarted | ToolCallRequested | ResponseDone


class RealtimeSession(ABC):
    """One call's live connection to a realtime model."""

    @abstractmethod
    async def send_audio(self, pcm: bytes) -> None:
        """The callee's audio, 20 ms of 8 kHz int16 PCM at a time."""

    @abstractmethod
    def events(self) -> AsyncIterator[RealtimeEvent]:
        """What the model says and does, in order, until the session closes."""

    @abstractmethod
    async def truncate(self, response_id: str, heard_ms: int) -> None:
        """The callee cut the reply short: the model keeps only its first ``heard_ms`` as said."""

    @abstractmethod
    async def send_tool_result(self, call_id: str, result: str) -> None:
        """The outcome of a tool the model called."""

    @abstractmethod
    async def aclose(self) -> None:
        """End the session."""


class RealtimeModel(ABC):
    @abstractmethod
    async def connect(self, instructions: str, tools: Sequence[Mapping[str, Any]]) -> RealtimeSession:
        """Open a session with the system prompt and the tools (agent/llm/prompts.py's shapes)."""


class RealtimeBrain(Brain, ABC):
    """A brain that converses on the call's audio; the composition hands it the media channel, not a Line."""

    @abstractmethod
    async def converse_media(self, task: CallTask, media: MediaChannel) -> ConversationEnd:
        """Conduct the call over ``media`` until it ends (see the module docstring for the duties)."""
