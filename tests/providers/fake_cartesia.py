"""A fake Cartesia text-to-speech server of ours: the TTS WebSocket protocol (Cartesia-Version 2025-04-16), on loopback.

It follows Cartesia's WebSocket reference (``/tts/websocket``): the key in
``X-API-Key`` (or ``Authorization: Bearer``, or the older ``api_key``
query), else HTTP 401 on the upgrade; the version in ``Cartesia-Version`` or
the ``cartesia_version`` query, else 400. Generation requests are checked
(``model_id``, ``voice`` ``{"mode": "id", "id"}``, ``language``, a raw
``output_format`` with ``pcm_s16le`` / ``pcm_f32le`` / ``pcm_mulaw`` /
``pcm_alaw`` at 8, 16, 22.05, 24, 44.1 or 48 kHz, ``context_id``); a bad one
gets an ``error`` message (``done: true``, ``status_code`` 400). Several
contexts may share a socket. Text with ``continue: true`` is buffered and
rendered a sentence at a time (managed buffering: or after
``max_buffer_delay_ms`` of no new text, default 3000); ``continue: false``
renders the rest and sends ``done``. Audio comes in 100 ms ``chunk``
messages (base64 ``data`` in the requested encoding and rate), each
followed by a ``timestamps`` message for the words that start in it
(``word_timestamps`` in seconds from the start of the context's audio, the
words spread over the speech by their characters) when ``add_timestamps``.
``{"context_id", "cancel": true}`` stops a context: nothing more is sent for it.
The speech itself is ``speak`` (a buzz by default), or ``speak_as`` given the
context's voice id too, so that each voice can sound its own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from loopback_ws import LoopbackWebSocketFake
from fake_elevenlabs import buzz8k

from byourside_server.voice.audio import alaw_encode, resample, ulaw_encode

ENCODINGS = ("pcm_s16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
LANGUAGES = frozenset(("en", "de", "es", "fr", "ja", "pt", "zh", "hi", "ko", "it", "nl", "pl", "ru", "sv", "tr",
                       "tl", "bg", "ro", "ar", "cs", "el", "fi", "hr", "ms", "sk", "da", "ta", "uk", "hu", "no",
                       "vi", "bn", "th", "he", "ka", "id", "te", "gu", "kn", "ml", "mr", "pa"))  # sonic-3's
_SENTENCE_END = re.compile(r"[.!?;]\s")


class FakeCartesia(LoopbackWebSocketFake):
    PATH = "/tts/websocket"

    def __init__(self, *, speak: Callable[[str], Awaitable[np.ndarray]] = buzz8k, api_key: str = "car-test",
                 speak_as: Callable[[str, str], Awaitable[np.ndarray]] | None = None) -> None:
        super().__init__()
        self.speak, self.api_key = speak, api_key
        self.speak_as = speak_as  # (text, voice id) -> speech; instead of ``speak`` when given
        self.sockets: list[dict[str, Any]] = []  # per socket: its version and every message received
        self.rendered: list[str] = []  # the pieces of text rendered, in order
        self.cancelled: list[str] = []  # context ids

    def _check(self, connection: Any, request: Any) -> Any:
        target = urlsplit(request.path)
        query = parse_qs(target.query)
        if target.path != "/tts/websocket":
            return connection.respond(404, "not found\n")
        bearer = request.headers.get("Authorization", "")
        key = request.headers.get("X-API-Key") or (bearer[7:] if bearer.startswith("Bearer ") else None) \
            or query.get("api_key", [None])[0]
        if key != self.api_key:
            return connection.respond(401, '{"error": "Invalid API key"}\n')
        if not (query.get("cartesia_version") or request.headers.get("Cartesia-Version")):
            return connection.respond(400, '{"error": "Cartesia-Version header is required"}\n')
        return None

    async def _handle(self, socket: Any) -> None:
        query = parse_qs(urlsplit(socket.request.path).query)
        record: dict[str, Any] = {"version": query.get("cartesia_version", [socket.request.headers.get(
            "Cartesia-Version")])[0], "messages": []}
        self.sockets.append(record)
        contexts: dict[str, _Context] = {}
        try:
            async for raw in socket:
                message = json.loads(raw)
                record["messages"].append(message)
                context_id = message.get("context_id")
                if message.get("cancel"):
                    self.cancelled.append(context_id)
                    if context_id in contexts:
                        contexts.pop(context_id).cancel()
                    continue
                problem = _problem(message)
                context = contexts.get(context_id)
                if problem is None and context is not None and context.closed:
                    problem = "context already closed: send continue true to add to it"
                if problem is not None:
                    await socket.send(json.dumps({"type": "error", "context_id": context_id, "status_code": 400,
                                                  "done": True, "error": problem}))
                    continue
                if context is None:
                    context = contexts[context_id] = _Context(self, socket, message)
                context.add(message)
        finally:
            for context in contexts.values():
                context.cancel()


def _problem(message: dict[str, Any]) -> str | None:
    if not message.get("context_id"):
        return "context_id is required"
    if not message.get("model_id"):
        return "model_id is required"
    voice = message.get("voice") or {}
    if voice.get("mode") != "id" or not voice.get("id"):
        return "voice must be {mode: id, id: ...}"
    if "transcript" not in message:
        return "transcript is required"
    if message.get("language", "en") not in LANGUAGES:
        return f"language {message.get('language')!r} is not supported by this model"
    output = message.get("output_format") or {}
    if output.get("container") != "raw" or output.get("encoding") not in ENCODINGS \
            or output.get("sample_rate") not in SAMPLE_RATES:
        return "output_format must be raw with a supported encoding and sample_rate"
    return None


class _Context:
    """One context's buffered text, rendered in order by its own task."""

    def __init__(self, fake: FakeCartesia, socket: Any, first: dict[str, Any]) -> None:
        self.fake, self.socket, self.id = fake, socket, first["context_id"]
        self.output = first["output_format"]
        self.voice_id = first["voice"]["id"]
        self.timestamps = bool(first.get("add_timestamps"))
        self.delay = max(0, int(first.get("max_buffer_delay_ms", 3000))) / 1000
        self.closed = False
        self.audio_ms = 0.0
        self._inbox: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def add(self, message: dict[str, Any]) -> None:
        more = bool(message.get("continue"))
        self.closed = not more
        self._inbox.put_nowait((message.get("transcript") or "", more))

    def cancel(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        buffered = ""
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                try:
                    timeout = self.delay if buffered.strip() else None
                    text, more = await asyncio.wait_for(self._inbox.get(), timeout)
                except TimeoutError:
                    await self._render(buffered)
                    buffered = ""
                    continue
                buffered += text
                if not more:
                    await self._render(buffered)
                    await self._send({"type": "done", "done": True, "status_code": 206})
                    return
                while (match := _SENTENCE_END.search(buffered)) is not None:
                    await self._render(buffered[:match.end()])
                    buffered = buffered[match.end():]

    async def _send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps({**message, "context_id": self.id}))

    async def _render(self, text: str) -> None:
        text = " ".join(text.split())
        if not text:
            return
        self.fake.rendered.append(text)
        speak_as = self.fake.speak_as
        pcm = await (speak_as(text, self.voice_id) if speak_as is not None else self.fake.speak(text))
        seconds = len(pcm) / 8000
        words, starts, ends, position = [], [], [], 0
        for word in text.split():  # each word's share of the speech follows its characters
            begin = text.index(word, position)
            position = begin + len(word)
            words.append(word)
            starts.append(self.audio_ms / 1000 + begin / len(text) * seconds)
            ends.append(self.audio_ms / 1000 + position / len(text) * seconds)
        told = 0
        for start in range(0, len(pcm), 800):  # 100 ms pieces
            piece = pcm[start:start + 800]
            await self._send({"type": "chunk", "data": base64.b64encode(self._encode(piece)).decode(),
                              "done": False, "status_code": 206, "step_time": 10.0})
            piece_end = self.audio_ms / 1000 + (start + len(piece)) / 8000
            upto = told
            while upto < len(words) and starts[upto] < piece_end:
                upto += 1
            if self.timestamps and upto > told:
                await self._send({"type": "timestamps", "done": False, "status_code": 206, "word_timestamps": {
                    "words": words[told:upto], "start": [round(s, 3) for s in starts[told:upto]],
                    "end": [round(e, 3) for e in ends[told:upto]]}})
                told = upto
        self.audio_ms += seconds * 1000

    def _encode(self, pcm: np.ndarray) -> bytes:
        rate, encoding = self.output["sample_rate"], self.output["encoding"]
        pcm = resample(pcm, 8000, rate) if rate != 8000 else pcm
        if encoding == "pcm_mulaw":
            return ulaw_encode(pcm)
        if encoding == "pcm_alaw":
            return alaw_encode(pcm)
        if encoding == "pcm_f32le":
            return (pcm.astype("<f4") / 32768).tobytes()
        return pcm.astype("<i2").tobytes()
