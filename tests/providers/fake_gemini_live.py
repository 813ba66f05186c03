"""A fake Gemini Live server of ours: the v1beta ``BidiGenerateContent`` WebSocket protocol, on loopback.

It follows the Live API's WebSockets reference (ai.google.dev/api/live, v1beta):
the socket at ``/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent?key=...``
(a wrong key closes it with 1007, as the service does); the first message must
be ``setup`` (``models/...``, ``responseModalities: ["AUDIO"]``, function
declarations), answered by ``setupComplete``; ``realtimeInput.audio`` must be
``audio/pcm;rate=16000`` and feeds automatic activity detection (an energy
detector; speech during generation sends ``serverContent.interrupted`` and
stops it). A callee turn is answered with ``serverContent.inputTranscription``,
then ``modelTurn`` parts of ``inlineData`` (``audio/pcm;rate=24000``, 100 ms
pieces), ``outputTranscription``, ``generationComplete`` and ``turnComplete``.
A step's tool is a ``toolCall.functionCalls`` entry; the turn goes on once the
client's ``toolResponse`` names that call. ``clientContent`` with
``turnComplete`` asks for a turn. ``drop_after_turns`` sends ``goAway`` and
closes (1011) after that many turns.

Differences from the service, on purpose: input transcription comes once per
turn, after it ends (the service streams pieces while the callee speaks).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from fake_openai_realtime import Step, buzz
from loopback_ws import LoopbackWebSocketFake

IN_RATE, OUT_RATE = 16000, 24000
BLOCK = IN_RATE // 50


class FakeGeminiLive(LoopbackWebSocketFake):
    PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"

    def __init__(self, steps: list[Step], *, hear: Callable[[np.ndarray], Awaitable[str]] | None = None,
                 speak: Callable[[str], Awaitable[np.ndarray]] = buzz, api_key: str = "gm-test",
                 silence_ms: int = 500, drop_after_turns: int | None = None, vad_threshold: float = 400.0) -> None:
        super().__init__()
        self.steps = list(steps)
        self.hear, self.speak, self.api_key = hear, speak, api_key
        self.silence_ms, self.vad_threshold = silence_ms, vad_threshold
        self.drop_after_turns = drop_after_turns
        self.setups: list[dict[str, Any]] = []
        self.tool_responses: list[dict[str, Any]] = []
        self.client_turns: list[str] = []
        self.closed_codes: list[int] = []
        self.heard: list[str] = []
        self.audio_in_ms = 0
        self.connections = 0
        self._ids = itertools.count(1)

    async def _handle(self, socket: Any) -> None:
        self.connections += 1
        target = urlsplit(socket.request.path)
        if target.path != self.PATH:
            await socket.close(1008, "unknown method")
            return
        if parse_qs(target.query).get("key") != [self.api_key]:
            self.closed_codes.append(1007)
            await socket.close(1007, "API key not valid. Please pass a valid API key.")
            return
        await _Session(self, socket).run()


class _Session:
    def __init__(self, server: FakeGeminiLive, socket: Any) -> None:
        self.server, self.socket = server, socket
        self.generating: asyncio.Task | None = None
        self.pending_calls: dict[str, asyncio.Future] = {}
        self.turns_done = 0
        self.in_speech = False
        self.silent = 0
        self.speech: list[np.ndarray] = []
        self.buffer = np.zeros(0, dtype=np.int16)
        self.background: set[asyncio.Task] = set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            setup = json.loads(await self.socket.recv()).get("setup")
            problem = _setup_problem(setup)
            if problem:
                self.server.closed_codes.append(1007)
                await self.socket.close(1007, problem)
                return
            self.server.setups.append(setup)
            await self.send({"setupComplete": {}})
            async for message in self.socket:
                await self.on_message(json.loads(message))
        except ConnectionClosed:
            pass
        finally:
            for task in [self.generating, *self.background]:
                if task is not None:
                    task.cancel()

    async def on_message(self, message: dict[str, Any]) -> None:
        if "realtimeInput" in message:
            audio = message["realtimeInput"].get("audio") or {}
            if audio.get("mimeType") != f"audio/pcm;rate={IN_RATE}":
                await self.socket.close(1007, "realtimeInput.audio must be audio/pcm;rate=16000")
                return
            raw = base64.b64decode(audio.get("data", ""))
            await self.audio(np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.int16))
        elif "toolResponse" in message:
            for response in message["toolResponse"].get("functionResponses", []):
                waiter = self.pending_calls.pop(response.get("id", ""), None)
                if waiter is None:
                    await self.socket.close(1007, "toolResponse names no pending function call")
                    return
                self.server.tool_responses.append(response)
                waiter.set_result(response)
        elif "clientContent" in message:
            content = message["clientContent"]
            text = " ".join(p.get("text", "") for t in content.get("turns", []) for p in t.get("parts", []))
            self.server.client_turns.append(text)
            if content.get("turnComplete"):
                self.start_turn(_instructed(text) or self.next_step(None))
        else:
            await self.socket.close(1007, "unknown client message")

    async def audio(self, pcm: np.ndarray) -> None:
        self.server.audio_in_ms += len(pcm) * 1000 // IN_RATE
        self.buffer = np.concatenate((self.buffer, pcm))
        while len(self.buffer) >= BLOCK:
            block, self.buffer = self.buffer[:BLOCK], self.buffer[BLOCK:]
            voiced = float(np.sqrt(np.mean(block.astype(np.float64) ** 2))) > self.server.vad_threshold
            if not self.in_speech:
                if voiced:
                    self.in_speech, self.silent, self.speech = True, 0, [block]
                    if self.generating is not None and not self.generating.done():
                        self.generating.cancel()
                        await self.send({"serverContent": {"interrupted": True}})
                continue
            self.speech.append(block)
            self.silent = 0 if voiced else self.silent + len(block)
            if self.silent * 1000 // IN_RATE >= self.server.silence_ms:
                self.in_speech = False
                task = asyncio.get_running_loop().create_task(self.user_turn(np.concatenate(self.speech)))
                self.background.add(task)
                task.add_done_callback(self.background.discard)

    async def user_turn(self, pcm: np.ndarray) -> None:
        text = await self.server.hear(pcm) if self.server.hear is not None else ""
        self.server.heard.append(text)
        if text:
            await self.send({"serverContent": {"inputTranscription": {"text": text}}})
        if not self.in_speech:
            self.start_turn(self.next_step(text))

    def next_step(self, heard: str | None) -> Step:
        steps = self.server.steps
        due = steps and (steps[0].when is None or (heard is not None and steps[0].when in heard.lower()))
        return steps.pop(0) if due else Step("")

    def start_turn(self, step: Step) -> None:
        if self.generating is not None and not self.generating.done():
            self.generating.cancel()
        self.generating = asyncio.get_running_loop().create_task(self.turn(step))

    async def turn(self, step: Step) -> None:
        try:
            if step.text:
                await self.say(step.text)
            if step.tool:
                call_id = f"call_{next(self.server._ids)}"
                waiter = asyncio.get_running_loop().create_future()
                self.pending_calls[call_id] = waiter
                await self.send({"toolCall": {"functionCalls": [{"id": call_id, "name": step.tool,
                                                                 "args": step.arguments}]}})
                await waiter
                if step.tool == "press_digits":  # the model goes on after the keypress
                    follow = self.next_step(None)
                    if follow.text:
                        await self.say(follow.text)
            await self.send({"serverContent": {"generationComplete": True}})
        except asyncio.CancelledError:
            return  # interrupted: the service sends no turnComplete for a cut turn
        await self.send({"serverContent": {"turnComplete": True},
                         "usageMetadata": {"promptTokenCount": 0, "responseTokenCount": 0}})
        self.turns_done += 1
        if self.server.drop_after_turns is not None and self.turns_done >= self.server.drop_after_turns:
            self.server.drop_after_turns = None
            await self.send({"goAway": {"timeLeft": "0s"}})
            await self.socket.close(1011, "session ended")

    async def say(self, text: str) -> None:
        pcm = await self.server.speak(text)
        await self.send({"serverContent": {"outputTranscription": {"text": text}}})
        piece = OUT_RATE // 10
        for start in range(0, len(pcm), piece):
            data = base64.b64encode(pcm[start:start + piece].astype("<i2").tobytes()).decode()
            await self.send({"serverContent": {"modelTurn": {"parts": [
                {"inlineData": {"mimeType": f"audio/pcm;rate={OUT_RATE}", "data": data}}]}}})
            await asyncio.sleep(0)


def _setup_problem(setup: dict[str, Any] | None) -> str | None:
    if not isinstance(setup, dict):
        return "the first message must be setup"
    if not str(setup.get("model", "")).startswith("models/"):
        return "setup.model must be models/..."
    if (setup.get("generationConfig") or {}).get("responseModalities") != ["AUDIO"]:
        return "responseModalities must be AUDIO"
    for tool in setup.get("tools", []):
        if any("name" not in f for f in tool.get("functionDeclarations", [])):
            return "every function declaration needs a name"
    return None


def _instructed(text: str) -> Step | None:
    if "time limit" in text:
        return Step("Sorry, I have to end the call now. Goodbye.")
    if "dropped" in text:
        return Step("Sorry about that, where were we?")
    return None
