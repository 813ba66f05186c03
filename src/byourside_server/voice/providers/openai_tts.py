"""OpenAI text-to-speech over ``POST /v1/audio/speech``, as a ``TextToSpeech``.

Protocol: the Audio API's speech endpoint (``Authorization: Bearer``; body
``model``, ``input``, ``voice``, ``response_format: "pcm"`` (raw 24 kHz
16-bit mono little-endian), and, for the gpt-4o-mini-tts family,
``instructions`` naming the call's language). The audio comes back as a
chunked response body, read as it streams and downsampled to 8 kHz.
Errors are JSON ``{"error": {"message", "type", "code"}}``: 429 and 5xx are
retried briefly, anything else fails the rendering.

The input is text only (no streaming input), so the voice engine's
incremental speech (voice/ports.py) cuts a streamed reply at its first
clause and then by sentence, one request each. OpenAI gives no word timings:
a reply cut short keeps the words whose share of the audio (by their
characters) had been played, the estimate the local Piper voice uses too
(``SpeechChunk.heard``). Plain ``httpx`` (a core dependency): the openai SDK
would add a dependency tree for one POST.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx
import numpy as np

from byourside_server.voice.audio import TELEPHONE_RATE, resample
from byourside_server.voice.ports import TextToSpeech

DEFAULT_URL = "https://api.openai.com/v1/audio/speech"
DEFAULT_MODEL = "gpt-4o-mini-tts"
PCM_RATE = 24_000  # response_format "pcm"
RETRIES = 2  # more attempts after a 429 or 5xx
BACKOFF_SECONDS = 0.5
TIMEOUT = httpx.Timeout(20.0, connect=10.0)  # read: at most this long between two pieces of the body
# Language names for ``instructions`` (gpt-4o-mini-tts follows the text's language; this keeps its accent right).
LANGUAGE_NAMES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian",
                  "pt": "Portuguese", "nl": "Dutch", "he": "Hebrew", "ar": "Arabic", "ru": "Russian",
                  "pl": "Polish", "ja": "Japanese", "zh": "Chinese", "ko": "Korean", "hi": "Hindi"}


class OpenAITTSError(RuntimeError):
    """The service refused or failed a rendering; the message names no text."""


class OpenAITTS(TextToSpeech):
    def __init__(self, api_key: str, *, voice: str = "alloy", model: str = DEFAULT_MODEL, url: str = DEFAULT_URL,
                 language: str | None = None) -> None:
        self.api_key, self.voice, self.model, self.url = api_key, voice, model, url
        self.language = language.split("-")[0].lower() if language else None
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = \
            weakref.WeakKeyDictionary()

    def for_call(self, voice: str | None = None, language: str | None = None) -> OpenAITTS:
        """This speaker with a call's voice (a catalogue or contract name) and language."""
        from byourside_server.voice_catalogue import (
            primary_language,
            resolve_openai_tts,
        )

        return OpenAITTS(self.api_key, voice=resolve_openai_tts(voice, self.voice) if voice else self.voice, model=self.model,
                         url=self.url, language=primary_language(language) or self.language)

    def body(self, text: str) -> dict[str, object]:
        body: dict[str, object] = {"model": self.model, "input": text, "voice": self.voice, "response_format": "pcm"}
        name = LANGUAGE_NAMES.get(self.language or "")
        if name and not self.model.startswith("tts-1"):  # tts-1 and tts-1-hd take no instructions
            body["instructions"] = f"Speak in {name}, clearly and naturally, as on a phone call."
        return body

    def _client(self) -> httpx.AsyncClient:
        """One client (and its kept-alive connections) per event loop."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = httpx.AsyncClient(timeout=TIMEOUT)
        return client

    async def synthesize(self, text: str) -> np.ndarray:
        text = text.strip()
        if not text:
            return np.zeros(0, dtype=np.int16)
        for attempt in range(RETRIES + 1):
            try:
                data = await self._post(text)
            except _Retryable as exc:
                if attempt == RETRIES:
                    raise OpenAITTSError(str(exc)) from None
                await asyncio.sleep(BACKOFF_SECONDS * (2 ** attempt))
                continue
            pcm = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.int16)
            return resample(pcm, PCM_RATE, TELEPHONE_RATE)
        raise AssertionError("unreachable")

    async def _post(self, text: str) -> bytes:
        try:
            async with self._client().stream("POST", self.url, json=self.body(text),
                                             headers={"Authorization": f"Bearer {self.api_key}"}) as response:
                if response.status_code != 200:
                    await response.aread()
                    message = f"OpenAI TTS refused the request at {self.url} (HTTP {response.status_code}" \
                              f"{_code(response)})"
                    if response.status_code == 429 or response.status_code >= 500:
                        raise _Retryable(message)
                    raise OpenAITTSError(message)
                return b"".join([piece async for piece in response.aiter_bytes()])
        except httpx.HTTPError as exc:
            raise _Retryable(f"cannot render with OpenAI TTS at {self.url} ({type(exc).__name__})") from None


class _Retryable(Exception):
    pass


def _code(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return ""
    code = error.get("code") or error.get("type")
    return f", {code}" if isinstance(code, str) else ""
