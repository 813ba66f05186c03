"""Gemini Live over WebSocket (the v1beta ``BidiGenerateContent`` protocol), as a ``RealtimeModel``.

One socket per call to ``.../ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent``
with the API key as the ``key`` query parameter. The first message is
``setup`` (the model, ``responseModalities: ["AUDIO"]``, the voice and language
in ``speechConfig``, the instructions as ``systemInstruction``, the tools as
``functionDeclarations``, both transcriptions on); the server answers
``setupComplete``. Then:

- the callee's audio goes out as ``realtimeInput.audio`` (8 kHz frames
  upsampled to 16 kHz, ``audio/pcm;rate=16000``);
- ``serverContent.modelTurn`` parts with ``inlineData`` (24 kHz pcm) come
  back as ``AudioOut``, downsampled to 8 kHz; ``turnComplete`` ends a reply;
- ``serverContent.inputTranscription`` / ``outputTranscription`` pieces are
  gathered into each side's turn text; the first piece of a callee turn is
  reported as ``CalleeSpeechStarted`` (Gemini's own ``interrupted`` only comes
  while it is still generating, and our playback runs longer than that);
- ``toolCall.functionCalls`` become ``ToolCallRequested``; results go back as
  ``toolResponse.functionResponses``;
- ``goAway`` (the server is about to close) and a dropped socket are retryable.

Gemini keeps its own history and has no truncate: a barge-in is cut on our
side (the transcript keeps what was heard) and the server stops generating on
its own voice activity detection. Plain ``websockets``: the google-genai SDK
would pull in a large dependency tree for one socket.
"""

from __future__ import annotations

import asyncio
import itertools
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
from byourside_server.voice_catalogue import GEMINI_VOICES, resolve_gemini
from byourside_server.voice.realtime_audio import Downsampler, Upsampler, b64_pcm16, factor_for, pcm16_b64

log = structlog.get_logger(__name__)

INPUT_RATE, OUTPUT_RATE = 16000, 24000
DEFAULT_URL = ("wss://generativelanguage.googleapis.com/ws/"
               "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent")
DEFAULT_MODEL = "gemini-live-2.5-flash-preview"
CONNECT_TIMEOUT_SECONDS = 10.0
_RETRYABLE_CLOSE = {1000, 1001, 1006, 1011, 1012, 1013, 1014}


def function_declaration(tool: Mapping[str, Any]) -> dict[str, Any]:
    name, description, parameters = chat_tool_parts(tool)
    return {"name": name, "description": description, "parameters": _openapi_schema(parameters)}


def _openapi_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Gemini takes a subset of JSON Schema (its OpenAPI ``Schema``): other keys are dropped."""
    kept = {k: v for k, v in schema.items() if k in ("type", "description", "enum", "properties", "required",
                                                      "items", "minimum", "maximum", "pattern")}
    if "properties" in kept:
        kept["properties"] = {k: _openapi_schema(v) for k, v in kept["properties"].items()}
    return kept


class GeminiLive(RealtimeModel):
    name = "gemini"

    def __init__(self, api_key: str, *, model: str = DEFAULT_MODEL, url: str = DEFAULT_URL) -> None:
        self.api_key, self.model, self.url = api_key, model, url

    def voices(self) -> Sequence[VoiceInfo]:
        return [VoiceInfo(name, "gemini", ("*",), gender) for name, gender in GEMINI_VOICES.items()]

    def resolve_voice(self, requested: str) -> str:
        return resolve_gemini(requested)

    async def connect(self, instructions: str, tools: Sequence[Mapping[str, Any]], *, voice: str,
                      language: str) -> RealtimeSession:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        try:
            socket = await asyncio.wait_for(connect(f"{self.url}?key={self.api_key}", max_size=None,
                                                    open_timeout=CONNECT_TIMEOUT_SECONDS),
                                            CONNECT_TIMEOUT_SECONDS + 1)
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise RealtimeError(f"Gemini Live refused the connection at {self.url} (HTTP {status})",
                                retryable=status == 429 or status >= 500) from None
        except (OSError, asyncio.TimeoutError, WebSocketException) as exc:
            raise RealtimeError(f"cannot reach Gemini Live at {self.url} ({type(exc).__name__})",
                                retryable=True) from None
        session = GeminiLiveSession(socket)
        try:
            await session.start(self._setup(instructions, tools, voice, language))
        except BaseException:
            await session.aclose()
            raise
        return session

    def _setup(self, instructions: str, tools: Sequence[Mapping[str, Any]], voice: str, language: str) -> dict:
        speech: dict[str, Any] = {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": self.resolve_voice(voice)}}}
        if language and language != "auto":
            speech["languageCode"] = language
        model = self.model if self.model.startswith("models/") else f"models/{self.model}"
        return {"setup": {
            "model": model,
            "generationConfig": {"responseModalities": ["AUDIO"], "speechConfig": speech},
            "systemInstruction": {"parts": [{"text": instructions}]},
            "tools": [{"functionDeclarations": [function_declaration(t) for t in tools]}],
            "inputAudioTranscription": {},
            "outputAudioTranscription": {},
        }}


class GeminiLiveSession(RealtimeSession):
    def __init__(self, socket: Any) -> None:
        self._socket = socket
        self._up, self._down = Upsampler(factor_for(INPUT_RATE)), Downsampler(factor_for(OUTPUT_RATE))
        self._turns = itertools.count(1)
        self._turn: str | None = None  # our reply being generated (Gemini gives turns no ids)
        self._agent_text: list[str] = []
        self._callee_text: list[str] = []
        self._callee_speaking = False
        self._closing = False

    async def _send(self, message: dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self._socket.send(json.dumps(message))
        except ConnectionClosed as exc:
            if not self._closing:
                raise _closed_error(exc) from None

    async def start(self, setup: dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed

        await self._send(setup)
        try:
            while True:
                message = json.loads(await asyncio.wait_for(self._socket.recv(), CONNECT_TIMEOUT_SECONDS))
                if "setupComplete" in message:
                    return
        except asyncio.TimeoutError:
            raise RealtimeError("Gemini Live sent no setupComplete", retryable=True) from None
        except ConnectionClosed as exc:
            raise _closed_error(exc) from None

    async def send_audio(self, pcm: np.ndarray) -> None:
        await self._send({"realtimeInput": {"audio": {"data": pcm16_b64(self._up(pcm)),
                                                      "mimeType": f"audio/pcm;rate={INPUT_RATE}"}}})

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                message = await self._socket.recv()
            except ConnectionClosed as exc:
                if self._closing:
                    return
                raise _closed_error(exc) from None
            for event in self._map(json.loads(message)):
                yield event

    def _map(self, message: Mapping[str, Any]) -> list[RealtimeEvent]:
        out: list[RealtimeEvent] = []
        if "goAway" in message:
            raise RealtimeError("Gemini Live is closing the session (goAway)", retryable=True)
        for call in (message.get("toolCall") or {}).get("functionCalls", []):
            out.append(ToolCallRequested(call.get("id", ""), call.get("name", ""), call.get("args") or {},
                                         self._turn))
        content = message.get("serverContent")
        if not content:
            return out
        heard = (content.get("inputTranscription") or {}).get("text")
        if heard:
            if not self._callee_speaking:
                self._callee_speaking = True
                out.append(CalleeSpeechStarted())
            self._callee_text.append(heard)
        for part in (content.get("modelTurn") or {}).get("parts", []):
            data = (part.get("inlineData") or {}).get("data")
            if data:
                out += self._callee_done()
                if self._turn is None:
                    self._turn = f"turn_{next(self._turns)}"
                out.append(AudioOut(self._down(b64_pcm16(data)), self._turn))
        said = (content.get("outputTranscription") or {}).get("text")
        if said:
            self._agent_text.append(said)
        if content.get("interrupted") or content.get("turnComplete"):
            out += self._callee_done() if content.get("turnComplete") else []
            if self._turn is not None:
                out.append(Transcript("agent", "".join(self._agent_text).strip(), True, self._turn))
                out.append(ResponseDone(self._turn, cancelled=bool(content.get("interrupted"))))
            self._turn, self._agent_text = None, []
        return out

    def _callee_done(self) -> list[RealtimeEvent]:
        """The callee's turn is over once the model answers it."""
        if not self._callee_speaking and not self._callee_text:
            return []
        text = "".join(self._callee_text).strip()
        self._callee_speaking, self._callee_text = False, []
        return [CalleeSpeechStopped(), Transcript("contact", text, True)]

    async def truncate(self, response_id: str, heard_ms: int) -> None:
        """Gemini has no truncate: its server VAD stops the generation; our transcript keeps what was heard."""

    async def send_tool_result(self, call_id: str, name: str, result: str, *, respond: bool = True) -> None:
        # Gemini goes on after every tool response (``respond`` cannot hold it back); "waiting" tells it to be quiet.
        await self._send({"toolResponse": {"functionResponses": [{"id": call_id, "name": name,
                                                                  "response": {"result": result}}]}})

    async def respond(self, instructions: str | None = None) -> None:
        text = f"[{instructions}]" if instructions else "[The line is quiet. Speak first.]"
        await self._send({"clientContent": {"turns": [{"role": "user", "parts": [{"text": text}]}],
                                            "turnComplete": True}})

    async def aclose(self) -> None:
        self._closing = True
        await self._socket.close()


def _closed_error(exc: Exception) -> RealtimeError:
    rcvd = getattr(exc, "rcvd", None)
    code = rcvd.code if rcvd is not None else 1006
    reason = f" ({rcvd.reason[:80]})" if rcvd is not None and rcvd.reason else ""
    return RealtimeError(f"the Gemini Live connection closed (code {code}){reason}",
                         retryable=code in _RETRYABLE_CLOSE)
