"""A fake OpenAI Realtime server of ours: the GA WebSocket protocol (``gpt-realtime``), on loopback.

It follows the GA reference (platform.openai.com/docs/api-reference/realtime, the
event types of openai-python's ``types/realtime``): the upgrade at
``/v1/realtime?model=...`` with ``Authorization: Bearer``; ``session.created``,
then ``session.update`` -> ``session.updated`` (the session must be ``type:
realtime`` with ``audio/pcm`` at 24 kHz both ways and flat function tools, else
an ``error`` event); ``input_audio_buffer.append`` feeds a server VAD (an energy
detector with ``silence_duration_ms`` and ``prefix_padding_ms``) that sends
``input_audio_buffer.speech_started`` / ``speech_stopped`` / ``committed``, the
user item, ``conversation.item.input_audio_transcription.completed`` and, with
``create_response``, a response; speech while a response is still being
generated cancels it (``interrupt_response``). A response is ``response.created``,
the output item and content part, ``response.output_audio_transcript.delta`` and
``response.output_audio.delta`` (base64 pcm16 24 kHz in 100 ms pieces),
``.done`` events, a ``function_call`` item with its arguments when the step
calls a tool, and ``response.done`` (then ``rate_limits.updated``).
``conversation.item.truncate`` is checked against the item's audio length and
answered with ``conversation.item.truncated``; ``conversation.item.create``
of a ``function_call_output`` must name a call the model made.

What the "model" says is a script of ``Step``s (one per response); what it
hears is given by ``hear`` (e.g. faster-whisper over the audio, or a scripted
list); how its speech sounds by ``speak`` (Piper, or a synthetic voiced buzz).
Failure modes: ``reject_status`` answers the upgrade with that HTTP status;
``drop_after_responses`` closes the socket (1011) after that many responses;
``reconnect_gate`` holds every later upgrade until the test lets it through.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from loopback_ws import LoopbackWebSocketFake
from websockets.http11 import Response

RATE = 24000
BLOCK = RATE // 50  # 20 ms


@dataclass
class Step:
    """One response of the scripted model: words to say, and optionally a tool call after them."""

    text: str = ""
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    when: str | None = None  # wait for a heard turn containing this (lower case); until then, empty responses


async def buzz(text: str) -> np.ndarray:
    """Synthetic speech: a voiced buzz, 55 ms per character (loud enough for any VAD)."""
    samples = int(RATE * 0.055 * max(1, len(text)))
    t = np.arange(samples) / RATE
    wave = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6))
    return (6000 * wave / 2.3).astype(np.int16)


class FakeOpenAIRealtime(LoopbackWebSocketFake):
    PATH = "/v1/realtime"

    def __init__(self, steps: list[Step], *, hear: Callable[[np.ndarray], Awaitable[str]] | None = None,
                 speak: Callable[[str], Awaitable[np.ndarray]] = buzz, api_key: str = "sk-test",
                 first_audio_delay: float = 0.0, reject_status: int | None = None,
                 drop_after_responses: int | None = None, vad_threshold: float = 400.0,
                 reconnect_gate: asyncio.Event | None = None) -> None:
        super().__init__()
        self.steps = list(steps)
        self.hear = hear
        self.speak = speak
        self.api_key = api_key
        self.first_audio_delay = first_audio_delay
        self.reject_status = reject_status
        self.drop_after_responses = drop_after_responses
        self.reconnect_gate = reconnect_gate  # upgrades after the first wait until the test sets it
        self.upgrades = 0
        self.vad_threshold = vad_threshold
        self.connections = 0
        self.sessions: list[dict[str, Any]] = []  # each session.update's session, as sent
        self.truncations: list[dict[str, Any]] = []
        self.tool_outputs: list[dict[str, Any]] = []
        self.response_requests: list[dict[str, Any]] = []  # response.create events from the client
        self.errors_sent: list[str] = []
        self.heard: list[str] = []
        self.audio_in_ms = 0
        # For bench/voice_realtime.py: (perf_counter, middle sample) of each append; perf_counter of each
        # response's first audio delta as it is sent.
        self.appends: list[tuple[float, int]] = []
        self.first_audio_sent: list[float] = []
        self._ids = itertools.count(1)

    async def _check(self, connection: Any, request: Any) -> Response | None:
        self.upgrades += 1
        if self.upgrades > 1 and self.reconnect_gate is not None:
            await self.reconnect_gate.wait()
        if not request.path.startswith("/v1/realtime?") or "model=" not in request.path:
            return connection.respond(404, "not found\n")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return connection.respond(401, '{"error": {"code": "invalid_api_key"}}\n')
        if self.reject_status is not None:
            return connection.respond(self.reject_status, '{"error": {"code": "rate_limit_exceeded"}}\n')
        return None

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}"

    async def _handle(self, socket: Any) -> None:
        self.connections += 1
        await _Session(self, socket).run()


class _Session:
    def __init__(self, server: FakeOpenAIRealtime, socket: Any) -> None:
        self.server, self.socket = server, socket
        self.config: dict[str, Any] | None = None
        self.items: dict[str, dict[str, Any]] = {}  # item id -> {"role", "audio_ms"}
        self.calls: set[str] = set()
        self.responding: asyncio.Task | None = None
        self.responses_done = 0
        # server VAD state
        self.position = 0  # samples received
        self.in_speech = False
        self.speech_start = 0
        self.silent_samples = 0
        self.speech_pcm: list[np.ndarray] = []
        self.pending = np.zeros(0, dtype=np.int16)
        self.user_item = ""
        self.turns: set[asyncio.Task] = set()

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", self.server._id("event"))
        await self.socket.send(json.dumps(event))

    async def error(self, code: str, message: str, kind: str = "invalid_request_error") -> None:
        self.server.errors_sent.append(code)
        await self.send({"type": "error", "error": {"type": kind, "code": code, "message": message}})

    async def run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        await self.send({"type": "session.created", "session": {"type": "realtime", "id": self.server._id("sess")}})
        try:
            async for message in self.socket:
                await self.on_event(json.loads(message))
        except ConnectionClosed:
            pass
        finally:
            if self.responding is not None:
                self.responding.cancel()
            for task in list(self.turns):
                task.cancel()

    async def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.update":
            await self.update(event.get("session") or {})
        elif kind == "input_audio_buffer.append":
            if self.config is None:
                await self.error("session_not_configured", "send session.update first")
                return
            raw = base64.b64decode(event.get("audio", ""))
            if len(raw) % 2:
                await self.error("invalid_value", "audio must be pcm16")
                return
            pcm = np.frombuffer(raw, dtype="<i2").astype(np.int16)
            self.server.appends.append((time.perf_counter(), int(pcm[len(pcm) // 2]) if len(pcm) else 0))
            await self.audio(pcm)
        elif kind == "conversation.item.truncate":
            await self.truncate(event)
        elif kind == "conversation.item.create":
            await self.create_item(event.get("item") or {})
        elif kind == "response.create":
            self.server.response_requests.append(event)
            self.start_response((event.get("response") or {}).get("instructions"))
        elif kind == "response.cancel":
            if self.responding is not None:
                self.responding.cancel()
        else:
            await self.error("invalid_value", f"unknown event type {kind}")

    async def update(self, session: dict[str, Any]) -> None:
        audio = session.get("audio") or {}
        wanted = {"type": "audio/pcm", "rate": RATE}
        problems = []
        if session.get("type") != "realtime":
            problems.append("session.type must be 'realtime'")
        if (audio.get("input") or {}).get("format") != wanted or (audio.get("output") or {}).get("format") != wanted:
            problems.append("audio formats must be audio/pcm at 24000 Hz")
        if any(t.get("type") != "function" or "name" not in t for t in session.get("tools", [])):
            problems.append("tools must be flat function tools")
        if problems:
            await self.error("invalid_value", "; ".join(problems))
            return
        self.config = session
        self.server.sessions.append(session)
        await self.send({"type": "session.updated", "session": session})

    # input audio and the server VAD
    @property
    def vad(self) -> dict[str, Any]:
        return ((self.config or {}).get("audio", {}).get("input", {}).get("turn_detection")) or {}

    async def audio(self, pcm: np.ndarray) -> None:
        self.pending = np.concatenate((self.pending, pcm))
        self.server.audio_in_ms += len(pcm) * 1000 // RATE
        while len(self.pending) >= BLOCK:
            block, self.pending = self.pending[:BLOCK], self.pending[BLOCK:]
            await self.vad_block(block)

    async def vad_block(self, block: np.ndarray) -> None:
        voiced = float(np.sqrt(np.mean(block.astype(np.float64) ** 2))) > self.server.vad_threshold
        ms = self.position * 1000 // RATE
        self.position += len(block)
        if not self.in_speech:
            if voiced:
                self.in_speech, self.silent_samples, self.speech_pcm = True, 0, [block]
                self.speech_start = max(0, ms - int(self.vad.get("prefix_padding_ms", 300)))
                self.user_item = self.server._id("item")
                await self.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": self.speech_start,
                                 "item_id": self.user_item})
                if self.vad.get("interrupt_response", True) and self.responding is not None:
                    self.responding.cancel()
            return
        self.speech_pcm.append(block)
        self.silent_samples = 0 if voiced else self.silent_samples + len(block)
        if self.silent_samples * 1000 // RATE >= int(self.vad.get("silence_duration_ms", 500)):
            self.in_speech = False
            end_ms = (self.position - self.silent_samples) * 1000 // RATE
            item = self.user_item
            await self.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": end_ms, "item_id": item})
            await self.send({"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": None})
            user = {"id": item, "type": "message", "role": "user", "status": "completed",
                    "content": [{"type": "input_audio", "transcript": None}]}
            self.items[item] = {"role": "user"}
            await self.send({"type": "conversation.item.added", "previous_item_id": None, "item": user})
            task = asyncio.get_running_loop().create_task(self.user_turn(item, np.concatenate(self.speech_pcm)))
            self.turns.add(task)
            task.add_done_callback(self.turns.discard)

    async def user_turn(self, item: str, pcm: np.ndarray) -> None:
        """Transcription runs beside the audio (as the real service's does); the response follows it."""
        text = await self.server.hear(pcm) if self.server.hear is not None else ""
        self.server.heard.append(text)
        await self.send({"type": "conversation.item.input_audio_transcription.completed", "item_id": item,
                         "content_index": 0, "transcript": text})
        if self.vad.get("create_response", True) and not self.in_speech:
            self.start_response(None, heard=text)

    # responses
    def start_response(self, instructions: str | None, heard: str | None = None) -> None:
        if self.responding is not None and not self.responding.done():
            self.responding.cancel()
        steps = self.server.steps
        due = steps and (steps[0].when is None or (heard is not None and steps[0].when in heard.lower()))
        if instructions and "time limit" in instructions:  # the client's own closing instructions
            step = Step("Sorry, I have to end the call now. Goodbye.")
        elif instructions and "dropped" in instructions:
            step = Step("Sorry about that, where were we?")
        else:
            step = steps.pop(0) if due else Step("")
        self.responding = asyncio.get_running_loop().create_task(self.respond(step))

    async def respond(self, step: Step) -> None:
        rid = self.server._id("resp")
        output: list[dict[str, Any]] = []
        status = "completed"
        await self.send({"type": "response.created", "response": {"id": rid, "status": "in_progress", "output": []}})
        try:
            if step.text:
                output.append(await self.say(rid, step.text, len(output)))
            if step.tool:
                output.append(await self.call_tool(rid, step, len(output)))
        except asyncio.CancelledError:
            status = "cancelled"
        await self.send({"type": "response.done", "response": {"id": rid, "status": status, "output": output,
                                                               "usage": {"total_tokens": 0}}})
        await self.send({"type": "rate_limits.updated", "rate_limits": [
            {"name": "requests", "limit": 1000, "remaining": 999, "reset_seconds": 60}]})
        self.responses_done += 1
        if self.server.drop_after_responses is not None and self.responses_done >= self.server.drop_after_responses:
            self.server.drop_after_responses = None
            await self.socket.close(1011, "internal error")

    async def say(self, rid: str, text: str, index: int) -> dict[str, Any]:
        item_id = self.server._id("item")
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        self.items[item_id] = {"role": "assistant", "audio_ms": 0}
        where = {"response_id": rid, "item_id": item_id, "output_index": index, "content_index": 0}
        await self.send({"type": "response.output_item.added", "response_id": rid, "output_index": index, "item": item})
        await self.send({"type": "conversation.item.added", "previous_item_id": None, "item": item})
        await self.send({"type": "response.content_part.added", **where, "part": {"type": "audio", "transcript": ""}})
        await asyncio.sleep(self.server.first_audio_delay)
        pcm = await self.server.speak(text)
        await self.send({"type": "response.output_audio_transcript.delta", **where, "delta": text})
        piece = RATE // 10
        for start in range(0, len(pcm), piece):
            chunk = pcm[start:start + piece]
            if start == 0:
                self.server.first_audio_sent.append(time.perf_counter())
            self.items[item_id]["audio_ms"] += len(chunk) * 1000 // RATE
            await self.send({"type": "response.output_audio.delta", **where,
                             "delta": base64.b64encode(chunk.astype("<i2").tobytes()).decode()})
            await asyncio.sleep(0)
        await self.send({"type": "response.output_audio.done", **where})
        await self.send({"type": "response.output_audio_transcript.done", **where, "transcript": text})
        part = {"type": "audio", "transcript": text}
        await self.send({"type": "response.content_part.done", **where, "part": part})
        done = {**item, "status": "completed", "content": [{"type": "output_audio", "transcript": text}]}
        await self.send({"type": "response.output_item.done", "response_id": rid, "output_index": index, "item": done})
        return done

    async def call_tool(self, rid: str, step: Step, index: int) -> dict[str, Any]:
        item_id, call_id = self.server._id("item"), self.server._id("call")
        arguments = json.dumps(step.arguments)
        self.calls.add(call_id)
        item = {"id": item_id, "type": "function_call", "status": "in_progress", "name": step.tool,
                "call_id": call_id, "arguments": ""}
        await self.send({"type": "response.output_item.added", "response_id": rid, "output_index": index, "item": item})
        where = {"response_id": rid, "item_id": item_id, "output_index": index, "call_id": call_id}
        await self.send({"type": "response.function_call_arguments.delta", **where, "delta": arguments})
        await self.send({"type": "response.function_call_arguments.done", **where, "name": step.tool,
                         "arguments": arguments})
        done = {**item, "status": "completed", "arguments": arguments}
        await self.send({"type": "response.output_item.done", "response_id": rid, "output_index": index, "item": done})
        return done

    async def truncate(self, event: dict[str, Any]) -> None:
        item = self.items.get(event.get("item_id", ""))
        if item is None or item["role"] != "assistant":
            await self.error("invalid_value", "only an assistant message item can be truncated")
            return
        end = event.get("audio_end_ms")
        if not isinstance(end, int) or end < 0 or end > item["audio_ms"] or event.get("content_index") != 0:
            await self.error("invalid_value", "audio_end_ms is beyond the item's audio")
            return
        self.server.truncations.append(event)
        await self.send({"type": "conversation.item.truncated", "item_id": event["item_id"], "content_index": 0,
                         "audio_end_ms": end})

    async def create_item(self, item: dict[str, Any]) -> None:
        if item.get("type") == "function_call_output":
            if item.get("call_id") not in self.calls:
                await self.error("invalid_value", "function_call_output names no call the model made")
                return
            self.server.tool_outputs.append(item)
        item_id = item.get("id") or self.server._id("item")
        self.items[item_id] = {"role": item.get("role", "tool")}
        added = {**item, "id": item_id, "status": "completed"}
        await self.send({"type": "conversation.item.added", "previous_item_id": None, "item": added})
        await self.send({"type": "conversation.item.done", "previous_item_id": None, "item": added})
