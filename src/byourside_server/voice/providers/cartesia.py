"""Cartesia text-to-speech over its WebSocket, as a ``TextToSpeech`` with word timings and streaming input.

Protocol (Cartesia-Version ``2025-04-16``): ``wss://api.cartesia.ai/tts/websocket``
with the key in ``X-API-Key`` and the version in ``Cartesia-Version`` (and
the ``cartesia_version`` query, which takes precedence). Each generation
request names a ``context_id``, the ``model_id``, the ``voice`` (``{"mode":
"id", "id": ...}``), the ``language``, ``output_format`` (raw ``pcm_s16le``
at 8 kHz: the telephone's rate, so no resampling) and ``add_timestamps``.
The service answers with ``chunk`` messages (base64 ``data``),
``timestamps`` messages (``word_timestamps``: ``words``, ``start``, ``end``
in seconds from the start of the context's audio), then ``done``; or an
``error`` message (``done: true``). ``{"context_id": ..., "cancel": true}``
stops a generation.

A reply streamed from a model (``incremental``) is one context: each piece
of text goes out as it arrives with ``continue: true`` and an empty
transcript with ``continue: false`` ends it, so Cartesia hears the whole
reply as one utterance and chooses when to start speaking. Audio is handed
to the engine in chunks cut at word ends (by the timestamps): each chunk
holds every word whose audio has fully arrived, so a reply the callee cuts
short keeps exactly the words heard. One socket per reply, opened when the
reply starts (before its first text). Plain ``websockets`` (the ``realtime``
extra): the cartesia SDK adds a large tree for one socket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from byourside_server.voice.ports import IncrementalSpeech, SpeechChunk, TextToSpeech

DEFAULT_URL = "wss://api.cartesia.ai/tts/websocket"
API_VERSION = "2025-04-16"
DEFAULT_MODEL = "sonic-3"
DEFAULT_VOICE_ID = "f786b574-daa5-4673-aa0c-cbe3e8534c02"  # "Katie", a stable voice Cartesia recommends for agents
SAMPLE_RATE = 8000
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 20.0  # at most this long between two messages of a generation


class CartesiaError(RuntimeError):
    """The service refused or failed a generation; the message names no text."""


class CartesiaTTS(TextToSpeech):
    def __init__(self, api_key: str, *, voice_id: str = DEFAULT_VOICE_ID, model: str = DEFAULT_MODEL,
                 url: str = DEFAULT_URL, language: str = "en", version: str = API_VERSION) -> None:
        self.api_key, self.voice_id, self.model, self.url = api_key, voice_id, model, url
        self.language = language.split("-")[0].lower()  # Cartesia takes ISO 639-1 codes
        self.version = version

    def for_call(self, voice: str | None = None, language: str | None = None) -> CartesiaTTS:
        """This speaker with a call's voice (a catalogue name, a contract name or a voice id) and language."""
        from byourside_server.voice_catalogue import primary_language, resolve_cartesia

        return CartesiaTTS(self.api_key, voice_id=resolve_cartesia(voice, self.voice_id) if voice else self.voice_id,
                           model=self.model, url=self.url, language=primary_language(language) or self.language,
                           version=self.version)

    async def synthesize(self, text: str) -> np.ndarray:
        return (await self.render(text)).pcm

    async def render(self, text: str) -> SpeechChunk:
        context = _Context(self)
        try:
            context.send(text.strip(), more=False)
            await context.finished()
            return context.whole(text)
        finally:
            await context.aclose()

    def incremental(self, first_clause: bool = True) -> IncrementalSpeech:
        return CartesiaSpeech(self)

    def request(self, context_id: str, transcript: str, more: bool) -> dict[str, Any]:
        return {"model_id": self.model, "transcript": transcript, "voice": {"mode": "id", "id": self.voice_id},
                "language": self.language, "context_id": context_id,
                "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": SAMPLE_RATE},
                "add_timestamps": True, "continue": more}


class CartesiaSpeech(IncrementalSpeech):
    """One reply as one Cartesia context: text out as it is pushed, chunks in as their words complete."""

    def __init__(self, tts: CartesiaTTS) -> None:
        super().__init__(tts, first_clause=False)
        self._context = _Context(tts)

    def push(self, piece: str) -> None:
        if self._ended or not piece:
            return
        self.text += piece
        self._context.send(piece, more=True)

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._context.send("", more=False)

    async def __aiter__(self) -> AsyncIterator[SpeechChunk]:
        try:
            while True:
                chunk = await self._context.next_chunk(self.text)
                if chunk is None:
                    return
                yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        await self._context.aclose()


class _Context:
    """One socket and one context on it: requests out in order, audio and word ends in as they arrive."""

    def __init__(self, tts: CartesiaTTS) -> None:
        self.tts = tts
        self.context_id = str(uuid.uuid4())
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._audio: list[np.ndarray] = []
        self._samples = 0
        self._words: list[tuple[str, int]] = []  # (word, end ms from the start of the context's audio)
        self._sent_text = False
        self._done = False
        self._error: CartesiaError | None = None
        self._socket: Any = None
        self._emitted_samples = 0
        self._emitted_words = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    def send(self, transcript: str, more: bool) -> None:
        self._sent_text = self._sent_text or bool(transcript.strip())
        self._outbox.put_nowait(self.tts.request(self.context_id, transcript, more))

    async def _run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        tts = self.tts
        try:
            first = await self._outbox.get()
            if not first["continue"] and not self._sent_text:
                return  # nothing to say: no generation
            async with connect(f"{tts.url}?cartesia_version={tts.version}", open_timeout=CONNECT_TIMEOUT_SECONDS,
                               additional_headers={"X-API-Key": tts.api_key, "Cartesia-Version": tts.version},
                               max_size=None) as socket:
                self._socket = socket
                sender = asyncio.ensure_future(self._send_all(socket, first))
                try:
                    await self._receive(socket)
                finally:
                    sender.cancel()
        except InvalidStatus as exc:
            self._error = CartesiaError(f"Cartesia refused the connection at {tts.url} "
                                        f"(HTTP {exc.response.status_code})")
        except (TimeoutError, OSError, WebSocketException) as exc:
            self._error = CartesiaError(f"cannot render with Cartesia at {tts.url} ({type(exc).__name__})")
        except CartesiaError as exc:
            self._error = exc
        finally:
            self._socket = None
            self._done = True
            self._changed.set()

    async def _send_all(self, socket: Any, first: dict[str, Any]) -> None:
        message = first
        while True:
            if message["transcript"] or not message["continue"]:
                await socket.send(json.dumps(message))
            if not message["continue"]:
                return
            message = await self._outbox.get()

    async def _receive(self, socket: Any) -> None:
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), READ_TIMEOUT_SECONDS))
            if message.get("context_id") not in (None, self.context_id):
                continue
            kind = message.get("type")
            if kind == "error":
                detail = message.get("error_code") or message.get("title") or message.get("error") or "error"
                raise CartesiaError(f"Cartesia error {message.get('status_code', '')} {detail}".replace("  ", " "))
            if kind == "chunk" and message.get("data"):
                pcm = np.frombuffer(base64.b64decode(message["data"]), dtype="<i2").astype(np.int16)
                self._audio.append(pcm)
                self._samples += len(pcm)
            elif kind == "timestamps":
                stamps = message.get("word_timestamps") or {}
                for word, end in zip(stamps.get("words") or [], stamps.get("end") or []):
                    self._words.extend((w, round(float(end) * 1000)) for w in str(word).split())
            self._changed.set()
            if message.get("done") or kind == "done":
                return

    async def finished(self) -> None:
        while not self._done:
            self._changed.clear()
            await self._changed.wait()
        if self._error is not None:
            raise self._error

    def whole(self, text: str) -> SpeechChunk:
        """Everything received as one chunk of ``text``, with the word ends when they match its words."""
        pcm = np.concatenate(self._audio) if self._audio else np.zeros(0, dtype=np.int16)
        ends = tuple(end for _, end in self._words)
        return SpeechChunk(text, pcm, ends if len(ends) == len(text.split()) else None)

    async def next_chunk(self, pushed: str) -> SpeechChunk | None:
        """The audio up to the last word that has fully arrived (everything once done); None at the end."""
        while True:
            if self._error is not None:
                raise self._error
            chunk = self._cut(pushed)
            if chunk is not None:
                return chunk
            if self._done:
                return None
            self._changed.clear()
            await self._changed.wait()

    def _cut(self, pushed: str) -> SpeechChunk | None:
        received_ms = self._samples * 1000 // SAMPLE_RATE
        ready = self._emitted_words
        while ready < len(self._words) and self._words[ready][1] <= received_ms:
            ready += 1
        if self._done:
            end_sample = self._samples
            ready = len(self._words)
        elif ready > self._emitted_words:
            end_sample = self._words[ready - 1][1] * SAMPLE_RATE // 1000
        else:
            return None
        if end_sample <= self._emitted_samples and ready == self._emitted_words:
            return None
        if len(self._audio) > 1:
            self._audio = [np.concatenate(self._audio)]
        pcm = self._audio[0][self._emitted_samples:end_sample] if self._audio else np.zeros(0, np.int16)
        start_ms = self._emitted_samples * 1000 // SAMPLE_RATE
        words = self._words[self._emitted_words:ready]
        if words:
            text, ends = " ".join(w for w, _ in words), tuple(max(0, e - start_ms) for _, e in words)
        elif not self._words and self._emitted_samples == 0:
            text, ends = " ".join(pushed.split()), None  # no timestamps at all: the whole text, timed by share
        else:
            text, ends = "", None  # the silence after the last word
        self._emitted_samples, self._emitted_words = end_sample, ready
        if len(pcm) == 0:
            return None if self._done else self._cut(pushed)
        return SpeechChunk(text, pcm, ends)

    async def aclose(self) -> None:
        """Stop: a generation still running is cancelled on the service, then the socket closes."""
        socket = self._socket
        if socket is not None and not self._done:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(socket.send(json.dumps({"context_id": self.context_id, "cancel": True})), 1.0)
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
