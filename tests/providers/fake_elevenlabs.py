"""A fake ElevenLabs text-to-speech server of ours: the stream-input WebSocket protocol, on loopback.

It follows ElevenLabs' WebSocket reference (api-reference/websocket, the
``/v1/text-to-speech/{voice_id}/stream-input`` endpoint): the key in the
``xi-api-key`` header (401 on the upgrade otherwise), ``model_id`` and
``output_format`` in the query (``ulaw_8000`` or ``pcm_16000``; anything else
is refused with 400); the first message must be ``{"text": " "}`` (with
optional ``voice_settings``), then text messages (``flush`` renders what is
buffered), then ``{"text": ""}`` ends the input. Audio comes back in 100 ms
messages with ``audio`` (base64) and an ``alignment`` whose
``charStartTimesMs`` / ``charDurationsMs`` are relative to that message's
audio (characters spread evenly over the speech), then ``{"isFinal": true}``.
The speech itself is ``speak`` (Piper in the SIP test, else a buzz).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from loopback_ws import LoopbackWebSocketFake

from byourside_server.voice.audio import resample, ulaw_encode


async def buzz8k(text: str) -> np.ndarray:
    """Synthetic speech at 8 kHz: a voiced buzz, 60 ms per character."""
    t = np.arange(int(8000 * 0.06 * max(1, len(text)))) / 8000
    return (5000 * np.sign(np.sin(2 * np.pi * 150 * t))).astype(np.int16)


class FakeElevenLabs(LoopbackWebSocketFake):
    PATH = "/v1/text-to-speech"

    def __init__(self, *, speak: Callable[[str], Awaitable[np.ndarray]] = buzz8k, api_key: str = "xi-test") -> None:
        super().__init__()
        self.speak, self.api_key = speak, api_key
        self.requests: list[dict[str, Any]] = []  # per socket: the query and the texts received

    def _check(self, connection: Any, request: Any) -> Any:
        target = urlsplit(request.path)
        if not (target.path.startswith("/v1/text-to-speech/") and target.path.endswith("/stream-input")):
            return connection.respond(404, "not found\n")
        if request.headers.get("xi-api-key") != self.api_key:
            return connection.respond(401, '{"detail": {"status": "invalid_api_key"}}\n')
        if parse_qs(target.query).get("output_format", ["mp3_44100_128"])[0] not in ("ulaw_8000", "pcm_16000"):
            return connection.respond(400, '{"detail": {"status": "invalid_output_format"}}\n')
        return None

    async def _handle(self, socket: Any) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(socket.request.path).query).items()}
        record: dict[str, Any] = {"query": query, "texts": []}
        self.requests.append(record)
        first = json.loads(await socket.recv())
        if first.get("text") != " ":
            await socket.close(1008, "the first message must be the initial text ' '")
            return
        buffered = ""
        async for message in socket:
            text = json.loads(message).get("text", "")
            if text == "":
                await self._render(socket, buffered, query["output_format"])
                await socket.send(json.dumps({"isFinal": True}))
                return
            record["texts"].append(text)
            buffered += text

    async def _render(self, socket: Any, text: str, output_format: str) -> None:
        text = text.strip()
        if not text:
            return
        pcm = await self.speak(text)
        per_char = len(pcm) / 8 / len(text)  # ms of speech per character
        piece = 800  # 100 ms at 8 kHz
        for index, start in enumerate(range(0, len(pcm), piece)):
            chunk = pcm[start:start + piece]
            first_ms, last_ms = start / 8, (start + len(chunk)) / 8
            chars = [i for i in range(len(text)) if first_ms <= i * per_char < last_ms]
            audio = ulaw_encode(chunk) if output_format == "ulaw_8000" else resample(chunk, 8000, 16000).tobytes()
            await socket.send(json.dumps({
                "audio": base64.b64encode(audio).decode(),
                "isFinal": None,
                "alignment": {"chars": [text[i] for i in chars],
                              "charStartTimesMs": [int(i * per_char - first_ms) for i in chars],
                              "charDurationsMs": [int(per_char)] * len(chars)},
            }))
