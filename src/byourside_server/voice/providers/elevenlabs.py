"""ElevenLabs text-to-speech over its stream-input WebSocket, as a ``TextToSpeech`` with word timings.

Protocol: ``wss://api.elevenlabs.io/v1/text-to-speech/{voice_id}/stream-input``
with ``model_id`` and ``output_format=ulaw_8000`` (the telephone's own
encoding: no resampling) and the key in the ``xi-api-key`` header. We send the
opening message (``{"text": " "}`` with voice settings), the text with
``flush``, then ``{"text": ""}`` (end of input); the service answers with
messages carrying base64 ``audio`` and an ``alignment`` (``chars``,
``charStartTimesMs``, ``charDurationsMs``, relative to that piece of audio),
and ``{"isFinal": true}``.

The voice engine's incremental speech (voice/ports.py) already cuts a
streamed reply at its first clause and then sentence by sentence; each piece
is one ``render`` here, on its own socket, so the first clause is heard while
the model is still writing the rest. The alignment gives each word's end, so
a reply cut short is reported by the words that had actually been heard.
Plain ``websockets``: the elevenlabs SDK is synchronous-first and heavy.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import numpy as np

from byourside_server.voice.audio import ulaw_decode
from byourside_server.voice.ports import SpeechChunk, TextToSpeech

DEFAULT_URL = "wss://api.elevenlabs.io/v1/text-to-speech"
DEFAULT_MODEL = "eleven_flash_v2_5"
DEFAULT_VOICE_ID = "21m00Tcm4TlvDq8ikWAM"  # "Rachel", one of the premade voices every account has
# Models that take ``language_code`` (ElevenLabs enforces a language only on these; others follow the text).
LANGUAGE_CODE_MODELS = frozenset(("eleven_flash_v2_5", "eleven_turbo_v2_5"))
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 20.0  # at most this long between two messages of a rendering


class ElevenLabsError(RuntimeError):
    """The service refused or failed a rendering; the message names no text."""


class ElevenLabsTTS(TextToSpeech):
    def __init__(self, api_key: str, *, voice_id: str = DEFAULT_VOICE_ID, model: str = DEFAULT_MODEL,
                 url: str = DEFAULT_URL, language: str | None = None) -> None:
        self.api_key, self.voice_id, self.model, self.url = api_key, voice_id, model, url.rstrip("/")
        self.language = language  # ISO 639-1, for the multilingual models; None: the model decides

    def for_call(self, voice: str | None = None, language: str | None = None) -> ElevenLabsTTS:
        """This speaker with a call's voice (a catalogue name, a contract name or a voice id) and language."""
        from byourside_server.voice_catalogue import (
            primary_language,
            resolve_elevenlabs,
        )

        return ElevenLabsTTS(self.api_key, voice_id=resolve_elevenlabs(voice, self.voice_id) if voice else self.voice_id,
                             model=self.model, url=self.url, language=primary_language(language) or self.language)

    async def synthesize(self, text: str) -> np.ndarray:
        return (await self.render(text)).pcm

    async def render(self, text: str) -> SpeechChunk:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        query = f"model_id={self.model}&output_format=ulaw_8000"
        if self.language and self.model in LANGUAGE_CODE_MODELS:
            query += f"&language_code={self.language}"
        try:
            async with connect(f"{self.url}/{self.voice_id}/stream-input?{query}", open_timeout=CONNECT_TIMEOUT_SECONDS,
                               additional_headers={"xi-api-key": self.api_key}, max_size=None) as socket:
                await socket.send(json.dumps({"text": " ", "voice_settings": {"stability": 0.5,
                                                                               "similarity_boost": 0.8}}))
                await socket.send(json.dumps({"text": text.strip() + " ", "flush": True}))
                await socket.send(json.dumps({"text": ""}))
                return _collect(text, [message async for message in _until_final(socket)])
        except InvalidStatus as exc:
            raise ElevenLabsError(f"ElevenLabs refused the connection at {self.url} "
                                  f"(HTTP {exc.response.status_code})") from None
        except (TimeoutError, OSError, WebSocketException) as exc:
            raise ElevenLabsError(f"cannot render with ElevenLabs at {self.url} ({type(exc).__name__})") from None


async def _until_final(socket: Any):
    """The rendering's messages up to ``isFinal``; a silence of ``READ_TIMEOUT_SECONDS`` is a failure."""
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), READ_TIMEOUT_SECONDS))
        yield message
        if message.get("isFinal"):
            return


def _collect(text: str, messages: list[dict[str, Any]]) -> SpeechChunk:
    """The audio of all pieces, and where each word of ``text`` ends by the alignment (None if it does not fit)."""
    pieces: list[np.ndarray] = []
    char_ends: list[tuple[str, int]] = []
    offset_ms = 0
    for message in messages:
        if message.get("error"):
            raise ElevenLabsError(f"ElevenLabs error {message.get('error')}")
        audio = message.get("audio")
        if not audio:
            continue
        pcm = ulaw_decode(base64.b64decode(audio))
        alignment = message.get("alignment") or {}
        for char, start, duration in zip(alignment.get("chars") or [], alignment.get("charStartTimesMs") or [],
                                         alignment.get("charDurationsMs") or []):
            char_ends.append((char, offset_ms + int(start) + int(duration)))
        pieces.append(pcm)
        offset_ms += len(pcm) // 8
    pcm = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
    return SpeechChunk(text, pcm, _word_ends(text, char_ends))


def _word_ends(text: str, char_ends: list[tuple[str, int]]) -> tuple[int, ...] | None:
    ends, current = [], None
    for char, end in char_ends:
        if char.isspace():
            if current is not None:
                ends.append(current)
            current = None
        else:
            current = end
    if current is not None:
        ends.append(current)
    return tuple(ends) if len(ends) == len(text.split()) else None
