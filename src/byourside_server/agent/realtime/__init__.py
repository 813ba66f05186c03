"""The realtime-model slot: a speech-to-speech model conducting a call on the audio itself.

A cascaded brain (offline, llm) talks through the text face of a call (a
``Line``: the voice engine turns audio into turns and text into speech). A
realtime model (OpenAI Realtime, Gemini Live) hears and speaks audio directly,
decides when to answer with its own turn detection, calls tools, and reports
transcripts of both sides. ``RealtimeBrain`` (agent/realtime/conversation.py)
is the brain that conducts a call over the media channel with one of them:

- ``RealtimeModel.connect`` opens one session per call with the system prompt
  and the tools of the LLM brain (agent/llm/prompts.py), the voice and the
  language. Each provider is one module here (openai.py, gemini.py) that
  speaks its WebSocket protocol and resamples: the port is 8 kHz int16 both
  ways, the telephone's own rate.
- The conversation pumps the channel's inbound frames into ``send_audio`` and
  each ``AudioOut`` into ``MediaChannel.play``. When ``CalleeSpeechStarted``
  arrives while a reply plays, it clears the channel and ``truncate``s the
  reply to what had actually left, so the model's history keeps only what was
  heard, as the cascaded path does.
- ``ToolCallRequested`` is answered with ``send_tool_result``; ``end_call``
  and ``press_digits`` act on the channel (``hangup``, ``send_digits``).
- ``Transcript`` events of both sides become the call's turns (agent turns
  marked ``interrupted`` when truncated).

A session that fails raises ``RealtimeError`` from ``events``; ``retryable``
says whether a new session may do better (a dropped socket, a rate limit, a
server error) or not (a refused key, a malformed session).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from byourside_server.agent.base import Brain, ConversationEnd
from byourside_server.domain import CallTask, Turn

if TYPE_CHECKING:
    import numpy as np

    from byourside_server.telephony.media import MediaChannel
    from byourside_server.voice.latency import LatencyLog


class RealtimeError(Exception):
    """The provider refused or lost the session. The message names no personal data."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class AudioOut:
    """Model speech to play: 8 kHz int16 PCM (the adapter resamples from the model's rate)."""

    pcm: np.ndarray
    response_id: str


@dataclass(frozen=True)
class Transcript:
    speaker: str  # "agent" or "contact"
    text: str
    final: bool  # False: an interim piece that a later final event replaces
    response_id: str | None = None  # the agent's reply it belongs to


@dataclass(frozen=True)
class CalleeSpeechStarted:
    """The model's own turn detection heard the callee begin (barge-in if we are speaking)."""

    audio_ms: int | None = None  # position in the audio sent to this session, when the provider says


@dataclass(frozen=True)
class CalleeSpeechStopped:
    audio_ms: int | None = None


@dataclass(frozen=True)
class ToolCallRequested:
    call_id: str
    name: str
    arguments: Mapping[str, Any]
    response_id: str | None = None


@dataclass(frozen=True)
class ResponseDone:
    response_id: str
    cancelled: bool = False


RealtimeEvent = AudioOut | Transcript | CalleeSpeechStarted | CalleeSpeechStopped | ToolCallRequested | ResponseDone


class RealtimeSession(ABC):
    """One call's live connection to a realtime model."""

    @abstractmethod
    async def send_audio(self, pcm: np.ndarray) -> None:
        """The callee's audio, 20 ms of 8 kHz int16 PCM at a time."""

    @abstractmethod
    def events(self) -> AsyncIterator[RealtimeEvent]:
        """What the model says and does, in order; ends when the session is closed, raises ``RealtimeError``."""

    @abstractmethod
    async def truncate(self, response_id: str, heard_ms: int) -> None:
        """The callee cut the reply short: the model keeps only its first ``heard_ms`` as said."""

    @abstractmethod
    async def send_tool_result(self, call_id: str, name: str, result: str, *, respond: bool = True) -> None:
        """The outcome of a tool the model called; ``respond``: let the model go on speaking."""

    @abstractmethod
    async def respond(self, instructions: str | None = None) -> None:
        """Ask the model to speak now (a silent line, a resumed session, the time limit)."""

    @abstractmethod
    async def aclose(self) -> None:
        """End the session."""


@dataclass(frozen=True)
class VoiceInfo:
    """One voice a provider can speak (the catalogue: GET /v1/agent/voices)."""

    name: str
    provider: str
    languages: tuple[str, ...]  # BCP-47 primary subtags; ("*",) for a multilingual voice
    gender: str | None = None


class RealtimeModel(ABC):
    name: str = "realtime"

    @abstractmethod
    async def connect(self, instructions: str, tools: Sequence[Mapping[str, Any]], *, voice: str,
                      language: str) -> RealtimeSession:
        """Open a session. ``tools`` are in the chat-completions shape of agent/llm/prompts.py."""

    def voices(self) -> Sequence[VoiceInfo]:
        """The voices this provider speaks."""
        return ()

    def resolve_voice(self, requested: str) -> str:
        """The provider's voice for a request's ``voice`` (the contract's default names map to one of ours)."""
        return requested


@dataclass
class RealtimeCall:
    """What the runtime gives a media brain beside the channel: where turns and latency go."""

    on_turns: Callable[[Sequence[Turn]], Awaitable[None]]
    latency: LatencyLog | None = None
    hold_audio: np.ndarray | None = None  # 8 kHz speech played while the provider reconnects (None: silence)


class MediaBrain(Brain, ABC):
    """A brain that converses on the call's audio; the runtime hands it the media channel, not a Line."""

    @abstractmethod
    async def converse_media(self, task: CallTask, media: MediaChannel, call: RealtimeCall) -> ConversationEnd:
        """Conduct the call over ``media`` until it ends (agent/realtime/conversation.py)."""


def chat_tool_parts(tool: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]]:
    """(name, description, JSON-schema parameters) of a chat-completions tool definition."""
    function = tool.get("function", tool)
    return function["name"], function.get("description", ""), function.get("parameters", {"type": "object"})


__all__ = [
    "AudioOut", "CalleeSpeechStarted", "CalleeSpeechStopped", "MediaBrain", "RealtimeCall", "RealtimeError", "RealtimeEvent", "RealtimeModel",
    "RealtimeSession", "ResponseDone", "ToolCallRequested", "Transcript", "VoiceInfo", "chat_tool_parts",
]
