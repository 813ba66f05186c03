"""A fake Deepgram live speech-to-text server of ours: the ``listen`` v1 streaming WebSocket, on loopback.

It follows Deepgram's live streaming reference (``/v1/listen``): the key in
``Authorization: Token <key>`` (HTTP 401 on the upgrade otherwise); the query
checked (a known ``model``; raw ``encoding`` ``linear16``/``mulaw``/``alaw``
needs ``sample_rate``; ``channels``; ``utterance_end_ms`` needs
``interim_results=true`` and at least 1000; ``endpointing`` in ms or
``false``); HTTP 400 with an ``err_code`` body otherwise. Binary messages
are audio; text messages are ``KeepAlive``, ``Finalize`` and
``CloseStream``. No message for ``idle_timeout`` seconds closes the socket
with 1011 (``NET-0001``), as the service does after about 10 s.

What the audio says: an energy detector (20 ms frames) finds speech; a span
ends after ``endpointing`` ms of quiet. ``vad_events`` sends
``SpeechStarted`` (``timestamp``) at a span's start. The span's words come
from ``script`` (a list of texts, one per span, in order) or ``hear`` (the
span's int16 pcm and its rate -> text). With a script, interim ``Results``
(``is_final: false``) come every ``interim_every_ms`` of the span's audio
with the words heard so far: while the speech goes on, one more word each
time, the last one kept back; once it has paused, every word (the quiet
after the last word shows where it ends). Their words end where the speech
does, their ``start``/``duration`` cover the audio processed. At the span's
end come the finals: ``is_final: true``, a long text split in two results, the last one
``speech_final: true`` (``false`` when endpointing is off, or with
``speech_final=False``: a noisy line). ``UtteranceEnd`` (``last_word_end``)
follows ``utterance_end_ms`` of quiet after the last word. ``Finalize``
closes a span at once (``from_finalize: true``); ``CloseStream`` closes it,
sends ``Metadata`` and closes the socket normally. Word times are seconds
from the socket's first audio, words spread over the span by characters.
``answer_delay`` (seconds) holds every message back that long, in order, as
the service's network and processing would (for the voice bench).
``drop_after_results`` aborts the first socket's connection after that many
``Results``; ``refuse_from_connection`` answers later upgrades with 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from loopback_ws import LoopbackWebSocketFake

from byourside_server.voice.audio import alaw_decode, ulaw_decode

MODELS = frozenset(("nova-3", "nova-3-general", "nova-3-medical", "nova-2", "nova-2-phonecall", "nova", "enhanced",
                    "base"))
ENCODINGS = ("linear16", "mulaw", "alaw")
SPEECH_RMS = 400  # int16 RMS above which a 20 ms frame is speech


class FakeDeepgram(LoopbackWebSocketFake):
    PATH = "/v1/listen"

    def __init__(self, *, script: list[str] | None = None,
                 hear: Callable[[np.ndarray, int], Awaitable[str]] | None = None, api_key: str = "dg-test",
                 interim_every_ms: int = 400, speech_final: bool = True, idle_timeout: float = 10.0,
                 drop_after_results: int | None = None, refuse_from_connection: int | None = None,
                 answer_delay: float = 0.0) -> None:
        super().__init__()
        self.script = list(script or [])
        self.hear, self.api_key = hear, api_key
        self.interim_every_ms, self.speech_final, self.idle_timeout = interim_every_ms, speech_final, idle_timeout
        self.drop_after_results, self.refuse_from_connection = drop_after_results, refuse_from_connection
        self.answer_delay = answer_delay
        self.sockets: list[dict[str, Any]] = []  # per socket: query, controls received, audio seconds, sent
        self.upgrades = 0
        self.heard: list[str] = []  # every span's text, in order

    def _check(self, connection: Any, request: Any) -> Any:
        target = urlsplit(request.path)
        self.upgrades += 1
        if target.path != "/v1/listen":
            return connection.respond(404, "not found\n")
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return _error(connection, 401, "INVALID_AUTH", "Invalid credentials.")
        if self.refuse_from_connection is not None and self.upgrades >= self.refuse_from_connection:
            return _error(connection, 503, "SERVICE_UNAVAILABLE", "Service unavailable.")
        query = {k: v[-1] for k, v in parse_qs(target.query).items()}
        problem = _query_problem(query)
        if problem:
            return _error(connection, 400, "INVALID_QUERY_PARAMETER", problem)
        return None

    async def _handle(self, socket: Any) -> None:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(socket.request.path).query).items()}
        record: dict[str, Any] = {"query": query, "controls": [], "audio_seconds": 0.0, "sent": []}
        self.sockets.append(record)
        await _Stream(self, socket, query, record).run()


def _error(connection: Any, status: int, code: str, message: str) -> Any:
    body = json.dumps({"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}) + "\n"
    return connection.respond(status, body)


def _query_problem(query: dict[str, str]) -> str | None:
    if query.get("model", "base") not in MODELS:
        return f"No such model: {query.get('model')}"
    encoding = query.get("encoding")
    if encoding is not None and encoding not in ENCODINGS:
        return f"Unsupported encoding for this fake: {encoding}"
    if encoding is not None and not query.get("sample_rate", "").isdigit():
        return "sample_rate is required with a raw encoding"
    if query.get("channels", "1") != "1":
        return "this fake hears one channel"
    if "utterance_end_ms" in query:
        if query.get("interim_results") != "true":
            return "utterance_end_ms requires interim_results=true"
        if int(query["utterance_end_ms"]) < 1000:
            return "utterance_end_ms must be at least 1000"
    endpointing = query.get("endpointing", "10")
    if endpointing != "false" and not endpointing.isdigit():
        return "endpointing must be a number of milliseconds or false"
    return None


class _Stream:
    """One socket: audio in, recognition out, on the audio's own clock."""

    def __init__(self, fake: FakeDeepgram, socket: Any, query: dict[str, str], record: dict[str, Any]) -> None:
        self.fake, self.socket, self.record = fake, socket, record
        self.encoding = query.get("encoding", "linear16")
        self.rate = int(query.get("sample_rate", "16000"))
        self.frame = self.rate // 50
        endpointing = query.get("endpointing", "10")
        self.endpointing_ms = None if endpointing == "false" else int(endpointing)
        self.utterance_end_ms = int(query["utterance_end_ms"]) if "utterance_end_ms" in query else None
        self.interim = query.get("interim_results") == "true"
        self.vad_events = query.get("vad_events") == "true"
        self.connection = len(fake.sockets)
        self.samples = np.zeros(0, dtype=np.int16)  # not yet classified
        self.position = 0  # frames classified
        self.span: list[np.ndarray] | None = None  # the speech span's frames (its trailing quiet included)
        self.span_start = 0
        self.quiet = 0  # frames of quiet at the end of the span
        self.text: str | None = None  # a scripted span's words, known from its start
        self.interims_sent = 0
        self.last_word_end: float | None = None  # for UtteranceEnd
        self.results_sent = 0
        self.request_id = str(uuid.uuid4())
        self.delayed: asyncio.Queue[tuple[float, dict[str, Any]]] | None = None  # with answer_delay
        self.delayed_sender: asyncio.Task | None = None

    async def run(self) -> None:
        try:
            await self._serve()
        finally:
            if self.delayed_sender is not None:
                self.delayed_sender.cancel()

    async def _serve(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                try:
                    message = await asyncio.wait_for(self.socket.recv(), self.fake.idle_timeout)
                except TimeoutError:
                    await self.socket.close(1011, "NET-0001: no audio or message received within the timeout")
                    return
                if isinstance(message, bytes):
                    await self._audio(message)
                    continue
                kind = json.loads(message).get("type")
                self.record["controls"].append(kind)
                if kind == "Finalize":
                    await self._end_span(from_finalize=True)
                elif kind == "CloseStream":
                    await self._end_span()
                    await self._send({"type": "Metadata", "transaction_key": "deprecated",
                                      "request_id": self.request_id, "sha256": "0" * 64,
                                      "created": "2026-01-01T00:00:00.000Z",
                                      "duration": self.position * 0.02, "channels": 1})
                    if self.delayed is not None:
                        await self.delayed.join()
                    await self.socket.close(1000)
                    return

    async def _audio(self, data: bytes) -> None:
        if self.encoding == "mulaw":
            pcm = ulaw_decode(data)
        elif self.encoding == "alaw":
            pcm = alaw_decode(data)
        else:
            pcm = np.frombuffer(data, dtype="<i2")
        self.samples = np.concatenate([self.samples, pcm.astype(np.int16)])
        while len(self.samples) >= self.frame:
            frame, self.samples = self.samples[:self.frame], self.samples[self.frame:]
            self.position += 1
            self.record["audio_seconds"] = self.position * 0.02
            await self._classify(frame)

    async def _classify(self, frame: np.ndarray) -> None:
        loud = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) > SPEECH_RMS
        now = self.position * 0.02
        if self.span is None:
            if loud:
                self.span, self.span_start, self.quiet = [frame], self.position - 1, 0
                self.interims_sent = 0
                self.text = self.fake.script.pop(0) if self.fake.script and self.fake.hear is None else None
                if self.vad_events:
                    await self._send({"type": "SpeechStarted", "channel": [0], "timestamp": round(now - 0.02, 3)})
            elif self._utterance_over(now):
                await self._send({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": self.last_word_end})
                self.last_word_end = None
            return
        self.span.append(frame)
        self.quiet = 0 if loud else self.quiet + 1
        if self.interim and self.text and len(self.span) * 20 >= (self.interims_sent + 1) * self.fake.interim_every_ms:
            self.interims_sent += 1
            await self._results(self._prefix(), final=False)
        # Without endpointing the service still finalises after a while: 300 ms of quiet here.
        closing_ms = max(self.endpointing_ms, 100) if self.endpointing_ms is not None else 300
        if self.quiet * 20 >= closing_ms:
            await self._end_span()

    def _utterance_over(self, now: float) -> bool:
        return (self.utterance_end_ms is not None and self.last_word_end is not None
                and now - self.last_word_end >= self.utterance_end_ms / 1000)

    def _prefix(self) -> str:
        """The words "heard so far": one more with each interim, the last word kept until the speech pauses."""
        words = (self.text or "").split()
        if self.quiet:
            return " ".join(words)
        return " ".join(words[:max(1, min(len(words) - 1, self.interims_sent))])

    async def _end_span(self, *, from_finalize: bool = False) -> None:
        span, self.span = self.span, None
        if span is None:
            return
        keep = len(span) - self.quiet
        pcm = np.concatenate(span[:keep])
        text = self.text
        if text is None:
            text = await self.fake.hear(pcm, self.rate) if self.fake.hear is not None else ""
        text = text.strip()
        self.fake.heard.append(text)
        start, end = self.span_start * 0.02, (self.span_start + keep) * 0.02
        words = text.split()
        pieces = [words] if len(words) <= 6 else [words[:len(words) // 2], words[len(words) // 2:]]
        timed = _timed_words(words, start, end)
        at = 0
        for index, piece in enumerate(pieces):
            chunk = timed[at:at + len(piece)]
            at += len(piece)
            last = index == len(pieces) - 1
            await self._results(" ".join(piece), final=True, words=chunk,
                                speech_final=last and not from_finalize and self.endpointing_ms is not None
                                and self.fake.speech_final,
                                from_finalize=from_finalize and last,
                                window=(chunk[0]["start"] if chunk else start, chunk[-1]["end"] if chunk else end))
        if words:
            self.last_word_end = end

    async def _results(self, transcript: str, *, final: bool, words: list[dict[str, Any]] | None = None,
                       speech_final: bool = False, from_finalize: bool = False,
                       window: tuple[float, float] | None = None) -> None:
        start = self.span_start * 0.02
        if words is None:  # an interim: its words end where the speech heard so far does
            spoken = len(self.span or ()) - self.quiet
            words = _timed_words(transcript.split(), start, (self.span_start + spoken) * 0.02)
        begin, finish = window or (start, self.position * 0.02)
        message: dict[str, Any] = {
            "type": "Results", "channel_index": [0, 1], "duration": round(finish - begin, 3),
            "start": round(begin, 3), "is_final": final, "speech_final": speech_final,
            "channel": {"alternatives": [{"transcript": transcript, "confidence": 0.98 if transcript else 0.0,
                                          "words": words}]},
            "metadata": {"request_id": self.request_id, "model_uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, "nova-3")),
                         "model_info": {"name": "general-nova-3", "version": "2024-12-20.0", "arch": "nova-3"}},
        }
        if from_finalize:
            message["from_finalize"] = True
        await self._send(message)
        self.results_sent += 1
        drop = self.fake.drop_after_results
        if drop is not None and self.connection == 1 and self.results_sent >= drop:
            self.socket.transport.abort()  # the connection is lost, no close frame
            raise ConnectionError("dropped on purpose")

    async def _send(self, message: dict[str, Any]) -> None:
        self.record["sent"].append(message)
        if not self.fake.answer_delay:
            await self.socket.send(json.dumps(message))
            return
        loop = asyncio.get_running_loop()
        if self.delayed is None:
            self.delayed = asyncio.Queue()
            self.delayed_sender = loop.create_task(self._send_delayed())
        self.delayed.put_nowait((loop.time() + self.fake.answer_delay, message))

    async def _send_delayed(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, message = await self.delayed.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            with contextlib.suppress(Exception):
                await self.socket.send(json.dumps(message))
            self.delayed.task_done()


def _timed_words(words: list[str], start: float, end: float) -> list[dict[str, Any]]:
    """Words spread over [start, end] by their characters, as Deepgram's ``words`` entries."""
    total = max(1, sum(len(w) for w in words))
    timed, at = [], start
    for word in words:
        length = (end - start) * len(word) / total
        bare = word.strip(".,!?;:").lower()
        timed.append({"word": bare, "start": round(at, 3), "end": round(at + length, 3), "confidence": 0.98,
                      "punctuated_word": word})
        at += length
    return timed
