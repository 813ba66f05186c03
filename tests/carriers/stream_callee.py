"""The callee's side of a carrier's media stream, for the fake carriers (fake_twilio.py, fake_telnyx.py).

``StreamCallee`` is the carrier's end of the WebSocket seen as a media channel, so the SIP simulator's
``SipCallee`` (Piper speaking, faster-whisper listening) can play a scenario over it: what our server
sends is buffered and played out in real time, marks are echoed as they are reached, ``clear`` drops
the buffer, and in-band DTMF in our audio is heard as keys (``DtmfDetector``), as a real callee's phone
system would.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import itertools
import json
from types import SimpleNamespace

import numpy as np

from byourside_server.telephony.media import FRAME_MS, FRAME_SAMPLES, AudioFrame, DigitReceived, MediaChannel, Playback
from byourside_server.voice.audio import ulaw_decode, ulaw_encode


class DtmfDetector:
    """Keys in audio (Goertzel on each 20 ms frame): a key is reported once, after two frames of its tones.

    As a phone's receiver does, a key pressed again needs a pause of two frames or more first: a single
    frame missing inside one tone (the sender's audio arriving a tick late) is not a second press.
    """

    ROWS, COLUMNS = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
    KEYS = ("123A", "456B", "789C", "*0#D")
    PAUSE_FRAMES = 2

    def __init__(self) -> None:
        n = np.arange(FRAME_SAMPLES)
        self._probes = {f: (np.cos(2 * np.pi * f * n / 8000), np.sin(2 * np.pi * f * n / 8000))
                        for f in self.ROWS + self.COLUMNS}
        self._candidate: str | None = None
        self._frames = 0
        self._reported = False
        self._last_key: str | None = None  # the key reported last, until a pause of PAUSE_FRAMES ends it
        self._pause = 0

    def _share(self, frame: np.ndarray, energy: float, hz: int) -> float:
        cos, sin = self._probes[hz]
        return 2 * (float(frame @ cos) ** 2 + float(frame @ sin) ** 2) / (len(frame) * energy)

    def feed(self, pcm: np.ndarray) -> str | None:
        frame = pcm.astype(np.float64)
        energy = float(frame @ frame)
        key = None
        if energy > len(frame) * 300.0 ** 2:  # quieter than that is not a key press
            rows = [self._share(frame, energy, f) for f in self.ROWS]
            cols = [self._share(frame, energy, f) for f in self.COLUMNS]
            r, c = int(np.argmax(rows)), int(np.argmax(cols))
            if rows[r] > 0.2 and cols[c] > 0.2 and rows[r] + cols[c] > 0.7:
                key = self.KEYS[r][c]
        self._pause = self._pause + 1 if key is None else 0
        if self._pause >= self.PAUSE_FRAMES:
            self._last_key = None
        if key != self._candidate:
            self._candidate, self._frames, self._reported = key, 0, key == self._last_key
        self._frames += 1
        if key is not None and self._frames >= 2 and not self._reported:
            self._reported, self._last_key = True, key
            return key
        return None


class StreamCallee(MediaChannel):
    """The callee's side of a Media Stream: Twilio's end of the WebSocket, as a media channel for SipCallee.

    Audio our server sends is buffered and played out one 20 ms frame per tick (inbound here); marks are
    echoed as they are reached, ``clear`` drops the buffer. What the callee plays goes out as ``media``
    messages on the same tick. In-band DTMF in our server's audio is detected and handed to the callee
    as keys, as a real callee's phone system would.
    """

    def __init__(self, socket, stream_sid: str, call_sid: str, on_end) -> None:  # noqa: ANN001
        super().__init__()
        self.socket, self.stream_sid = socket, stream_sid
        self.dialog = SimpleNamespace(call_id=call_sid)  # SipCallee logs by dialog.call_id
        self._on_end = on_end
        self._heard: collections.deque[np.ndarray | str] = collections.deque()  # server audio and mark names
        self._speaking: collections.deque[tuple[np.ndarray, Playback]] = collections.deque()
        self._events: asyncio.Queue = asyncio.Queue()
        self._seq = itertools.count(3)  # 1 and 2 went to connected and start
        self._chunk = itertools.count(1)
        self.ticks = 0
        self.marks_echoed: list[str] = []
        self.clears = 0
        self.dtmf = DtmfDetector()
        self._tasks: list[asyncio.Task] = []
        self.paused = False  # the carrier stopped the stream (a <Dial>); the callee is still on the line
        self.streams = [stream_sid]  # every stream this callee was heard over, in order

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read(self.socket)), loop.create_task(self._clock())]

    async def pause(self) -> None:
        """New TwiML replaced <Connect><Stream>: the stream stops (``stop``, then the socket closes) while the
        callee stays on the line, hearing silence and not heard, until ``resume`` or ``hangup``."""
        if self.ended.is_set() or self.paused:
            return
        self.paused = True
        self._heard.clear()
        try:
            await self.socket.send(json.dumps({"event": "stop", "sequenceNumber": str(next(self._seq)),
                                               "streamSid": self.stream_sid, "stop": {"callSid": self.dialog.call_id}}))
            await self.socket.close()
        except Exception:  # noqa: BLE001 - already closed
            pass

    def resume(self, socket, stream_sid: str) -> None:  # noqa: ANN001
        """The call's TwiML connected a new stream (``connected`` and ``start`` already sent on it)."""
        self.socket, self.stream_sid, self.paused = socket, stream_sid, False
        self._seq = itertools.count(3)
        self.streams.append(stream_sid)
        self._tasks.append(asyncio.get_running_loop().create_task(self._read(socket)))

    async def _send(self, message: dict) -> None:
        if self.paused:
            return  # no stream: what the callee says reaches nobody
        message = {**message, "sequenceNumber": str(next(self._seq)), "streamSid": self.stream_sid}
        await self.socket.send(json.dumps(message))

    async def _read(self, socket) -> None:  # noqa: ANN001
        try:
            async for raw in socket:
                message = json.loads(raw)
                event = message.get("event")
                if event == "media":
                    pcm = ulaw_decode(base64.b64decode(message["media"]["payload"]))
                    for start in range(0, len(pcm), FRAME_SAMPLES):
                        frame = pcm[start:start + FRAME_SAMPLES]
                        self._heard.append(np.pad(frame, (0, FRAME_SAMPLES - len(frame))))
                elif event == "mark":
                    self._heard.append(str(message["mark"]["name"]))
                elif event == "clear":
                    self.clears += 1
                    marks = [item for item in self._heard if isinstance(item, str)]
                    self._heard.clear()
                    for name in marks:
                        await self._echo_mark(name)
        except Exception:  # noqa: BLE001 - the server closed the socket
            pass
        if socket is self.socket and not self.paused:
            self._finish(by_far_end=True)

    async def _echo_mark(self, name: str) -> None:
        self.marks_echoed.append(name)
        await self._send({"event": "mark", "mark": {"name": name}})

    async def _clock(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while not self.ended.is_set():
                await self._tick()
                next_at += FRAME_MS / 1000
                if next_at - loop.time() < -10.0:  # held up for longer than a carrier would catch up on
                    next_at = loop.time()
                await asyncio.sleep(max(0.0, next_at - loop.time()))
        except Exception:  # noqa: BLE001 - the socket went away mid-send
            self._finish(by_far_end=True)

    async def _tick(self) -> None:
        self.ticks += 1
        at_ms = (self.ticks - 1) * FRAME_MS
        while self._heard and isinstance(self._heard[0], str):
            await self._echo_mark(self._heard.popleft())  # type: ignore[arg-type]
        inbound = self._heard.popleft() if self._heard else np.zeros(FRAME_SAMPLES, dtype=np.int16)
        while self._heard and isinstance(self._heard[0], str):  # a mark right behind that frame: played now
            await self._echo_mark(self._heard.popleft())  # type: ignore[arg-type]
        outbound = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        if self._speaking:
            outbound, playback = self._speaking.popleft()
            playback.advance(at_ms)
        await self._send({"event": "media", "media": {"track": "inbound", "chunk": str(next(self._chunk)),
                                                      "timestamp": str(at_ms),
                                                      "payload": base64.b64encode(ulaw_encode(outbound)).decode()}})
        digit = self.dtmf.feed(inbound)  # type: ignore[arg-type]
        if digit is not None:
            self._events.put_nowait(DigitReceived(digit, at_ms))
        self._events.put_nowait(AudioFrame(inbound, outbound, at_ms))  # type: ignore[arg-type]

    # the callee's media channel
    async def events(self):  # noqa: ANN201
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    def play(self, pcm: np.ndarray) -> Playback:
        playback = Playback(len(pcm))
        if self.ended.is_set():
            playback.finish()
            return playback
        for start in range(0, len(pcm), FRAME_SAMPLES):
            frame = pcm[start:start + FRAME_SAMPLES]
            self._speaking.append((np.pad(frame, (0, FRAME_SAMPLES - len(frame))), playback))
        if playback.frames == 0:
            playback.finish()
        return playback

    def clear(self) -> None:
        for _, playback in self._speaking:
            playback.finish()
        self._speaking.clear()

    def mark(self) -> asyncio.Future:
        done = asyncio.get_running_loop().create_future()
        done.set_result(True)
        return done

    async def send_digits(self, digits: str) -> None:
        for digit in digits:  # the callee's keys reach our server as dtmf events
            await self._send({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": digit}})

    def elapsed_ms(self) -> int:
        return self.ticks * FRAME_MS

    async def hangup(self) -> None:
        """The callee hangs up (or the call was ended through the REST API): stop, then close."""
        if not self.ended.is_set() and self.paused:
            self._finish(by_far_end=False)
        elif not self.ended.is_set():
            try:
                await self._send({"event": "stop", "stop": {"callSid": self.dialog.call_id}})
                await self.socket.close()
            except Exception:  # noqa: BLE001 - already closed
                pass
            self._finish(by_far_end=False)

    def _finish(self, *, by_far_end: bool) -> None:
        if self.ended.is_set():
            return
        self._mark_ended(by_far_end=by_far_end)
        self.clear()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._events.put_nowait(None)
        self._on_end()
