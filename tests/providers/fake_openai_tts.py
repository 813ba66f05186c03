"""A fake OpenAI text-to-speech server of ours: ``POST /v1/audio/speech`` over real HTTP/1.1 on loopback.

It follows the Audio API reference (createSpeech): ``Authorization: Bearer``
(401 ``invalid_api_key`` otherwise); a JSON body with ``model`` (``tts-1``,
``tts-1-hd``, ``gpt-4o-mini-tts``), ``input`` (1 to 4096 characters),
``voice`` (the 13 built-in voices; ``ballad``, ``verse``, ``marin`` and
``cedar`` only with gpt-4o-mini-tts), optional ``instructions`` (refused
with tts-1 and tts-1-hd), ``speed`` (0.25 to 4.0) and ``response_format``;
a bad one gets 400 with ``{"error": {"message", "type":
"invalid_request_error", "param", "code"}}``. ``pcm`` (raw 24 kHz 16-bit
mono little-endian) and ``wav`` (the same behind a streaming WAV header)
are rendered; the compressed formats (mp3, opus, aac, flac) are valid but
not produced by this fake (501). The audio is sent with
``Transfer-Encoding: chunked`` in 100 ms pieces as it is "generated".
``refuse`` answers the next requests with the given statuses (e.g. 429,
500) first. The speech itself is ``speak`` (a buzz by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from fake_elevenlabs import buzz8k

from byourside_server.voice.audio import resample

MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
          "marin", "cedar")
NEWER_VOICES = ("ballad", "verse", "marin", "cedar")
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
           500: "Internal Server Error", 501: "Not Implemented"}


class FakeOpenAITTS:
    def __init__(self, *, speak: Callable[[str], Awaitable[np.ndarray]] = buzz8k, api_key: str = "sk-test") -> None:
        self.speak, self.api_key = speak, api_key
        self.requests: list[dict[str, Any]] = []  # the JSON bodies of the requests that reached the model
        self.refuse: list[int] = []  # statuses to answer the next requests with, in order
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/audio/speech"

    async def start(self) -> FakeOpenAITTS:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one request after another
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                await self._answer(method, path, headers, body, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()

    async def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes,
                      writer: asyncio.StreamWriter) -> None:
        if method != "POST" or path.split("?")[0] != "/v1/audio/speech":
            return await _json(writer, 404, _error("Invalid URL", None, None))
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return await _json(writer, 401, _error("Incorrect API key provided.", None, "invalid_api_key"))
        if self.refuse:
            status = self.refuse.pop(0)
            code = "rate_limit_exceeded" if status == 429 else None
            return await _json(writer, status, _error("Scripted refusal.", None, code,
                                                      "requests" if status == 429 else "server_error"))
        try:
            request = json.loads(body)
        except ValueError:
            return await _json(writer, 400, _error("We could not parse the JSON body of your request.", None, None))
        problem = _problem(request)
        if problem is not None:
            return await _json(writer, 400, _error(problem[1], problem[0], None))
        self.requests.append(request)
        response_format = request.get("response_format", "mp3")
        if response_format not in ("pcm", "wav"):
            return await _json(writer, 501, _error(f"this fake renders only pcm and wav, not {response_format}",
                                                   "response_format", None))
        pcm = resample(await self.speak(request["input"]), 8000, 24_000).astype("<i2")
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: audio/{response_format}\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        if response_format == "wav":  # sizes unknown while streaming: the maximum, as a streamed WAV has
            _chunk(writer, b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVEfmt "
                   + struct.pack("<IHHIIHH", 16, 1, 1, 24_000, 48_000, 2, 16) + b"data" + struct.pack("<I", 0xFFFFFFFF))
        for start in range(0, len(pcm), 2400):  # 100 ms pieces
            _chunk(writer, pcm[start:start + 2400].tobytes())
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()


def _problem(request: dict[str, Any]) -> tuple[str, str] | None:
    model, voice, text = request.get("model"), request.get("voice"), request.get("input")
    if model not in MODELS:
        return "model", f"Invalid model: {model!r}"
    if not isinstance(text, str) or not text:
        return "input", "input is required"
    if len(text) > 4096:
        return "input", "input must be at most 4096 characters"
    if voice not in VOICES or (voice in NEWER_VOICES and model != "gpt-4o-mini-tts"):
        return "voice", f"Invalid voice for {model}: {voice!r}"
    if request.get("response_format", "mp3") not in FORMATS:
        return "response_format", "Invalid response_format"
    if "instructions" in request and model != "gpt-4o-mini-tts":
        return "instructions", "instructions are not supported with tts-1 and tts-1-hd"
    speed = request.get("speed", 1.0)
    if not isinstance(speed, (int, float)) or not 0.25 <= speed <= 4.0:
        return "speed", "speed must be between 0.25 and 4.0"
    return None


def _error(message: str, param: str | None, code: str | None, kind: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


async def _json(writer: asyncio.StreamWriter, status: int, payload: dict) -> None:
    data = json.dumps(payload).encode()
    writer.write(f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    await writer.drain()


def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
