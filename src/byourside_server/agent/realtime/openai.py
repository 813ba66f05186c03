"""OpenAI Realtime over WebSocket (the GA protocol, ``gpt-realtime``), as a ``RealtimeModel``.

One socket per call to ``wss://api.openai.com/v1/realtime?model=...`` with the
API key as a Bearer token. The session is configured with ``session.update``
(``type: realtime``, audio in and out as ``audio/pcm`` at 24 kHz, server VAD
turn detection that also interrupts a reply, input transcription, the voice,
the instructions and the tools as flat ``function`` tools). Then:

- the callee's audio goes out as ``input_audio_buffer.append`` (8 kHz frames
  upsampled to 24 kHz, base64 pcm16);
- ``response.output_audio.delta`` comes back as ``AudioOut`` (downsampled to
  8 kHz), the transcripts of both sides as ``Transcript``
  (``response.output_audio_transcript.done``,
  ``conversation.item.input_audio_transcription.completed``), a finished
  ``function_call`` output item as ``ToolCallRequested``;
- a barge-in truncates the reply's audio item with
  ``conversation.item.truncate`` (``audio_end_ms``: what was heard);
- a tool's result is a ``function_call_output`` item, then ``response.create``.

The beta names (``response.audio.delta``, ``response.audio_transcript.done``)
are read too. Plain ``websockets`` client: the official SDK would add a large
dependency for a protocol of a dozen JSON events.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import numpy as np
import structlog

from byourside_server.agent.realtime import (
    AudioOut,
    CalleeSpeechStarted,
    CalleeSpeechStopped,
    RealtimeError,
    RealtimeEvent,
    RealtimeModel,
    RealtimeSession,
    ResponseDone,
    ToolCallRequested,
    Transcript,
    VoiceInfo,
    chat_tool_parts,
)
from byourside_server.voice_catalogue import OPENAI_VOICES, resolve_openai
from byourside_server.voice.realtime_audio import Downsampler, Upsampler, b64_pcm16, factor_for, pcm16_b64

log = structlog.get_logger(__name__)

OPENAI_RATE = 24000
DEFAULT_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_MODEL = "gpt-realtime"
CONNECT_TIMEOUT_SECONDS = 10.0
_RETRYABLE_CLOSE = {1001, 1006, 1011, 1012, 1013, 1014}
_AUDIO_DELTA = {"response.output_audio.delta", "response.audio.delta"}
_AGENT_TRANSCRIPT_DONE = {"response.output_audio_transcript.done", "response.audio_transcript.done"}
_AGENT_TRANSCRIPT_DELTA = {"response.output_audio_transcript.delta", "response.audio_transcript.delta"}


def realtime_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A chat-completions tool in the Realtime API's flat shape."""
    name, description, parameters = chat_tool_parts(tool)
    return {"type": "function", "name": name, "description": description, "parameters": parameters}


class OpenAIRealtime(RealtimeModel):
    name = "openai"

    def __init__(self, api_key: str, *, model: str = DEFAULT_MODEL, url: str = DEFAULT_URL,
                 transcription_model: str = "whisper-1", vad_silence_ms: int = 500) -> None:
        self.api_key, self.model, self.url = api_key, model, url
        self.transcription_model = transcription_model
        self.vad_silence_ms = vad_silence_ms

    def voices(self) -> Sequence[VoiceInfo]:
        return [VoiceInfo(name, "openai", ("*",), gender) for name, gender in OPENAI_VOICES.items()]

    def resolve_voice(self, requested: str) -> str:
        return resolve_openai(requested)

    async def connect(self, instructions: str, tools: Sequence[Mapping[str, Any]], *, voice: str,
                      language: str) -> RealtimeSession:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        url = f"{self.url}?model={self.model}"
        try:
            socket = await asyncio.wait_for(
                connect(url, additional_headers={"Authorization": f"Bearer {self.api_key}"}, max_size=None,
                        open_timeout=CONNECT_TIMEOUT_SECONDS), CONNECT_TIMEOUT_SECONDS + 1)
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise RealtimeError(f"OpenAI Realtime refused the connection at {self.url} (HTTP {status})",
                                retryable=status == 429 or status >= 500) from None
        except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
            raise RealtimeError(f"cannot reach OpenAI Realtime at {self.url} ({type(exc).__name__})",
                                retryable=True) from None
        session = OpenAIRealtimeSession(socket)
        try:
            await session.start(self._session_config(instructions, tools, voice, language))
        except BaseException:
            await session.aclose()
            raise
        return session

    def _session_config(self, instructions: str, tools: Sequence[Mapping[str, Any]], voice: str,
                        language: str) -> dict[str, Any]:
        audio_format = {"type": "audio/pcm", "rate": OPENAI_RATE}
        transcription: dict[str, Any] = {"model": self.transcription_model}
        if language and language != "auto":
            transcription["language"] = language.split("-")[0].lower()
        return {
            "type": "realtime",
            "model": self.model,
            "output_modalities": ["audio"],
            "instructions": instructions,
            "audio": {
                "input": {"format": audio_format, "transcription": transcription,
                          "turn_detection": {"type": "server_vad", "silence_duration_ms": self.vad_silence_ms,
                                             "prefix_padding_ms": 300, "create_response": True,
                                             "interrupt_response": True}},
                "output": {"format": audio_format, "voice": self.resolve_voice(voice)},
            },
            "tools": [realtime_tool(t) for t in tools],
            "tool_choice": "auto",
        }


class OpenAIRealtimeSession(RealtimeSession):
    def __init__(self, socket: Any) -> None:
        self._socket = socket
        factor = factor_for(OPENAI_RATE)
        self._up, self._down = Upsampler(factor), Downsampler(factor)
        self._audio_items: dict[str, str] = {}  # response id -> its audio message item id
        self._closing = False

    async def _send(self, event: dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self._socket.send(json.dumps(event))
        except ConnectionClosed as exc:
            if not self._closing:
                raise _closed_error(exc) from None

    async def start(self, config: dict[str, Any]) -> None:
        """Wait for ``session.created``, send the configuration, wait for ``session.updated``."""
        await self._expect("session.created")
        await self._send({"type": "session.update", "session": config})
        await self._expect("session.updated")

    async def _expect(self, wanted: str) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                event = json.loads(await asyncio.wait_for(self._socket.recv(), CONNECT_TIMEOUT_SECONDS))
                if event.get("type") == wanted:
                    return
                if event.get("type") == "error":
                    raise _error_from(event)
        except asyncio.TimeoutError:
            raise RealtimeError(f"OpenAI Realtime sent no {wanted}", retryable=True) from None
        except ConnectionClosed as exc:
            raise _closed_error(exc) from None

    async def send_audio(self, pcm: np.ndarray) -> None:
        await self._send({"type": "input_audio_buffer.append", "audio": pcm16_b64(self._up(pcm))})

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                message = await self._socket.recv()
            except ConnectionClosed as exc:
                if self._closing:
                    return
                raise _closed_error(exc) from None
            event = json.loads(message)
            for mapped in self._map(event):
                yield mapped

    def _map(self, event: dict[str, Any]) -> list[RealtimeEvent]:
        kind = event.get("type", "")
        if kind in _AUDIO_DELTA:
            self._audio_items.setdefault(event["response_id"], event.get("item_id", ""))
            return [AudioOut(self._down(b64_pcm16(event["delta"])), event["response_id"])]
        if kind in _AGENT_TRANSCRIPT_DELTA:
            return [Transcript("agent", event.get("delta", ""), False, event.get("response_id"))]
        if kind in _AGENT_TRANSCRIPT_DONE:
            return [Transcript("agent", event.get("transcript", ""), True, event.get("response_id"))]
        if kind == "conversation.item.input_audio_transcription.completed":
            return [Transcript("contact", event.get("transcript", ""), True)]
        if kind == "input_audio_buffer.speech_started":
            return [CalleeSpeechStarted(event.get("audio_start_ms"))]
        if kind == "input_audio_buffer.speech_stopped":
            return [CalleeSpeechStopped(event.get("audio_end_ms"))]
        if kind == "response.output_item.done":
            item = event.get("item") or {}
            if item.get("type") == "function_call":
                return [ToolCallRequested(item.get("call_id", ""), item.get("name", ""),
                                          _arguments(item.get("arguments")), event.get("response_id"))]
            return []
        if kind == "response.done":
            response = event.get("response") or {}
            return [ResponseDone(response.get("id", ""), cancelled=response.get("status") == "cancelled")]
        if kind == "error":
            error = _error_from(event)
            if error.retryable or _fatal(event):
                raise error
            log.warning("realtime_provider_error", provider="openai", code=_code(event))
        return []

    async def truncate(self, response_id: str, heard_ms: int) -> None:
        item_id = self._audio_items.get(response_id)
        if item_id:
            await self._send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                              "audio_end_ms": max(0, int(heard_ms))})

    async def send_tool_result(self, call_id: str, name: str, result: str, *, respond: bool = True) -> None:
        await self._send({"type": "conversation.item.create",
                          "item": {"type": "function_call_output", "call_id": call_id, "output": result}})
        if respond:
            await self._send({"type": "response.create"})

    async def respond(self, instructions: str | None = None) -> None:
        await self._send({"type": "response.create", **({"response": {"instructions": instructions}}
                                                        if instructions else {})})

    async def aclose(self) -> None:
        self._closing = True
        await self._socket.close()


def _arguments(raw: Any) -> Mapping[str, Any]:
    if isinstance(raw, Mapping):
        return raw
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, Mapping) else {}


def _code(event: Mapping[str, Any]) -> str:
    error = event.get("error") or {}
    return str(error.get("code") or error.get("type") or "unknown")


def _fatal(event: Mapping[str, Any]) -> bool:
    """Errors after which the session cannot go on (the rest, e.g. a bad truncate, are logged and ignored)."""
    return _code(event) in {"session_expired", "invalid_api_key", "insufficient_quota", "model_not_found"}


def _error_from(event: Mapping[str, Any]) -> RealtimeError:
    code = _code(event)
    error = event.get("error") or {}
    retryable = code in {"rate_limit_exceeded", "server_error", "session_expired"} or error.get("type") == "server_error"
    return RealtimeError(f"OpenAI Realtime error {code}", retryable=retryable)


def _closed_error(exc: Exception) -> RealtimeError:
    rcvd = getattr(exc, "rcvd", None)
    code = rcvd.code if rcvd is not None else 1006
    return RealtimeError(f"the OpenAI Realtime connection closed (code {code})",
                         retryable=code in _RETRYABLE_CLOSE or code == 1000)
