"""Deepgram live speech-to-text over its WebSocket, as the engine's streaming ``RecognitionStream``.

Protocol: the live streaming API ``listen`` v1 (``wss://api.deepgram.com/v1/listen``,
``Authorization: Token <key>``). The query names the ``model`` (``nova-3``),
``language``, the raw audio (``encoding=mulaw``, ``sample_rate=8000``,
``channels=1``: the telephone's own bytes, no conversion), ``interim_results``,
``endpointing`` (ms of silence before a result is ``speech_final``),
``utterance_end_ms``, ``vad_events`` and ``smart_format``. Audio goes up as
binary messages; ``{"type": "KeepAlive"}`` holds the socket while no audio
flows (the service closes it after about 10 s without any), ``{"type":
"Finalize"}`` flushes what it has heard, ``{"type": "CloseStream"}`` ends
the stream (the last results, then ``Metadata``, then a normal close).

The service answers with ``Results`` (``channel.alternatives[0]`` with its
``transcript`` and ``words``, each word's ``start``/``end`` in seconds from
the socket's first audio; ``is_final``: this stretch of audio will not be
transcribed again; ``speech_final``: the speaker paused for ``endpointing``;
``from_finalize``), ``SpeechStarted`` (``timestamp``), ``UtteranceEnd``
(``last_word_end``, sent after ``utterance_end_ms`` without words, for when
noise keeps ``speech_final`` from coming) and ``Metadata``.

Mapped to our events, on the media timeline (the socket's first audio frame
is its zero): the first words of a turn are ``SpeechStarted`` (or Deepgram's
own), each interim result is ``InterimText`` (the turn so far), final
results are gathered, and ``speech_final`` (else ``UtteranceEnd``, else
``from_finalize``) closes the turn: ``SpeechEnded`` and ``FinalText`` with
the gathered words. The engine's barge-in, floor and record-tone checks read
``endpointer`` and ``in_tone``: our own VAD endpointer and ``BeepDetector``
run beside the stream on every frame, as they do under the batch recogniser.

Guesses, for speculative turn-taking (``guess_after_ms`` > 0): once our VAD
has heard ``guess_after_ms`` of quiet after the callee's speech and Deepgram
has sent a result covering audio past that speech's end (an interim or a
final: its words take in the last one), the turn so far is reported as an
``InterimText`` on our VAD's span of the speech, the early transcript's rule
under Whisper (the callee quiet since the words' end). One guess per pause;
a later pause in the same Deepgram turn (our VAD closed the earlier speech,
Deepgram did not) settles the earlier guess as not standing when Deepgram
has heard more words since, and guesses anew (a wordless sound in between
leaves the earlier guess standing).
When Deepgram closes that turn, its words say whether the guess stood: the
same words, none ending after the guessed speech, and the turn is reported on
the guessed span (the brain has it already); else on the guess's start to
Deepgram's last word (the callee went on: the whole turn follows).
``guess_verdict`` tells turn-taking which, as soon as either has settled it.

A socket that drops mid-call is opened again at once; audio fed meanwhile
is kept and sent on the new socket, whose first frame is its zero. A
refused key (HTTP 401), a refused reconnect, or a new socket dropping before
it took any audio fails the call's listening:
``next_event`` raises ``DeepgramError``. Plain ``websockets`` (the
``realtime`` extra): the deepgram SDK adds a large tree for one socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlencode

import numpy as np
import structlog

from byourside_server.voice.audio import FRAME_MS, TELEPHONE_RATE, ulaw_encode
from byourside_server.voice.listening import HeardSoFar, ListenEvent, ToneHeard
from byourside_server.voice.ports import (
    FinalText,
    InterimText,
    RecognitionStream,
    SpeechEnded,
    SpeechStarted,
    SpeechToText,
)
from byourside_server.voice.tones import BeepDetector
from byourside_server.voice.vad import Endpointer

log = structlog.get_logger(__name__)

DEFAULT_URL = "wss://api.deepgram.com/v1/listen"
CONNECT_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 5.0  # CloseStream: how long to wait for the last results and the close
# An open turn Deepgram has not closed is closed by us with the words it has, once Deepgram has processed
# this long past its last word beyond utterance_end_ms (which should have closed it)...
STALE_TURN_SLACK_MS = 1500
# ... or once Deepgram has sent nothing for this long of our audio (media ms).
SILENT_SERVICE_MS = 10_000
# A guessed turn still stands when Deepgram places its last word this far past our VAD's end of the speech
# (Deepgram's word times and our VAD's frames do not line up to the ms).
GUESS_END_SLACK_MS = 200
KEPT_VERDICTS = 8  # the latest guesses' verdicts kept for turn-taking (one speculation is open at a time)


class DeepgramError(RuntimeError):
    """Deepgram refused or lost the stream; the message names no audio or words."""


@dataclass(frozen=True)
class DeepgramOptions:
    api_key: str
    model: str = "nova-3"
    url: str = DEFAULT_URL
    language: str = "en"
    encoding: Literal["mulaw", "linear16"] = "mulaw"
    endpointing_ms: int = 300
    utterance_end_ms: int = 1000
    smart_format: bool = True
    keepalive_seconds: float = 4.0  # a KeepAlive after this long without audio (Deepgram closes after ~10 s)

    def address(self, *, sample_rate: int = TELEPHONE_RATE, encoding: str | None = None, live: bool = True) -> str:
        query: dict[str, Any] = {
            "model": self.model, "language": self.language, "encoding": encoding or self.encoding,
            "sample_rate": sample_rate, "channels": 1, "smart_format": str(self.smart_format).lower(),
        }
        if live:
            query.update(interim_results="true", endpointing=self.endpointing_ms,
                         utterance_end_ms=self.utterance_end_ms, vad_events="true")
        return f"{self.url}?{urlencode(query)}"

    def for_language(self, language: str | None) -> DeepgramOptions:
        """These options for a call's language (a BCP-47 tag; ``auto``: Deepgram's multilingual ``multi``)."""
        if not language:
            return self
        return replace(self, language="multi" if language == "auto" else language)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.api_key}"}


async def _connect(options: DeepgramOptions, address: str):
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus, WebSocketException

    try:
        return await connect(address, open_timeout=CONNECT_TIMEOUT_SECONDS, additional_headers=options.headers,
                             max_size=None)
    except InvalidStatus as exc:
        raise DeepgramError(f"Deepgram refused the connection at {options.url} "
                            f"(HTTP {exc.response.status_code})") from None
    except (TimeoutError, OSError, WebSocketException) as exc:
        raise DeepgramError(f"Deepgram is unreachable at {options.url} ({type(exc).__name__})") from None


def _words(message: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    alternatives = (message.get("channel") or {}).get("alternatives") or [{}]
    return (alternatives[0].get("transcript") or "").strip(), alternatives[0].get("words") or []


def _same_words(one: str, other: str) -> bool:
    """The same words, whatever the case and punctuation (an interim and a final of the same speech)."""
    return re.findall(r"[\w'-]+", one.lower()) == re.findall(r"[\w'-]+", other.lower())


class DeepgramSTT(SpeechToText):
    """One utterance at a time over a short live socket (the speech heard over ours, judged by its words)."""

    def __init__(self, options: DeepgramOptions) -> None:
        self.options = options

    def for_language(self, language: str | None) -> DeepgramSTT:
        return DeepgramSTT(self.options.for_language(language)) if language else self

    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> str:
        socket = await _connect(self.options, self.options.address(sample_rate=sample_rate, encoding="linear16",
                                                                   live=False))
        texts: list[str] = []
        try:
            await socket.send(pcm.astype("<i2").tobytes())
            await socket.send(json.dumps({"type": "CloseStream"}))
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS + len(pcm) / sample_rate):
                async for raw in socket:
                    message = json.loads(raw)
                    if message.get("type") == "Results" and message.get("is_final"):
                        texts.append(_words(message)[0])
        finally:
            await socket.close()
        return " ".join(t for t in texts if t)


@dataclass(frozen=True)
class _Guess:
    """The turn so far, reported in a pause as ``InterimText`` on our VAD's span of the speech (media ms)."""

    start_ms: int
    end_ms: int
    text: str


@dataclass
class _Turn:
    """The callee's turn as Deepgram has heard it so far (media ms)."""

    start_ms: int | None = None
    end_ms: int | None = None
    finals: list[str] | None = None
    interim: str = ""
    started_reported: bool = False
    guess: _Guess | None = None  # the latest guess taken on this turn

    @property
    def text(self) -> str:
        return " ".join([*(self.finals or []), self.interim]).strip()

    def extend(self, start_ms: int, end_ms: int) -> None:
        self.start_ms = start_ms if self.start_ms is None else min(self.start_ms, start_ms)
        self.end_ms = end_ms if self.end_ms is None else max(self.end_ms, end_ms)


_FINALIZE, _CLOSE = "Finalize", "CloseStream"


class DeepgramRecognition(HeardSoFar, RecognitionStream):
    """One call's listening through Deepgram (see the module docstring)."""

    closes_turns = True  # Deepgram's verdict closes a turn, not our VAD's silence

    def __init__(self, options: DeepgramOptions, endpointer: Endpointer, *, tones: BeepDetector | None = None,
                 guess_after_ms: int = 0) -> None:
        self.options = options
        self.endpointer = endpointer  # our VAD: barge-in and the floor, which Deepgram's results come too late for
        self.tones = tones
        self.guess_after_ms = guess_after_ms  # quiet after speech before the turn so far is a guess; 0: never
        self.early_transcripts_used = 0  # guesses Deepgram's closing words confirmed
        self.guesses_revised = 0  # guesses it closed with other words, or more of them
        self.connections = 0
        self.messages_received = 0
        # The latest guesses settled, by span: whether each stood (Deepgram closed the turn on its words).
        self._verdicts: dict[tuple[int, int], bool] = {}
        self._events: asyncio.Queue[ListenEvent | DeepgramError] = asyncio.Queue()
        self._outbox: asyncio.Queue[tuple[int, bytes] | str] = asyncio.Queue()
        self._turn = _Turn()
        self._now_ms = 0
        self._last_tone_ms: int | None = None
        self._vad_closed_ms: int | None = None  # our VAD closed a turn here, Deepgram has not answered it yet
        self._answered_to_ms = -1  # the end of the latest turn Deepgram closed (media ms)
        self._processed_ms = 0  # the end of the audio Deepgram's latest result covers (media ms)
        self._last_message_ms = 0  # when Deepgram's latest message arrived (media ms)
        self._failure: DeepgramError | None = None
        self._closing = False
        self._runner: asyncio.Task | None = None

    # the media clock side
    def feed(self, frame: np.ndarray, at_ms: int) -> None:
        self._start()
        self._now_ms = at_ms + FRAME_MS
        payload = ulaw_encode(frame) if self.options.encoding == "mulaw" else frame.astype("<i2").tobytes()
        self._outbox.put_nowait((at_ms, payload))
        heard = self.endpointer.feed(frame)
        if heard is not None and self._answered_to_ms < heard.start_ms:
            self._vad_closed_ms = self._now_ms  # Deepgram's turn for this speech is still to come
        self._offer_guess()
        if not self.endpointer.in_speech and not self._turn.text:
            self._turn.started_reported = False  # a sound without words: the next speech is reported anew
        if self.tones is not None:
            tone_at = self.tones.feed(frame)
            if tone_at is not None:
                self._last_tone_ms = tone_at
                self._close_turn()  # a greeting running into the tone is heard before it
                self._events.put_nowait(ToneHeard(tone_at))
        self._close_stale_turn()

    def finish(self, at_ms: int) -> None:
        self.endpointer.flush()
        self._start()
        self._outbox.put_nowait(_FINALIZE)

    @property
    def unfinished(self) -> bool:
        """The callee is talking, Deepgram has words of a turn it has not closed, or has not answered a turn
        our VAD heard end (for up to the time its UtteranceEnd would take), or events are unread."""
        waiting = self._vad_closed_ms is not None and self._now_ms - self._vad_closed_ms < (
            self.options.endpointing_ms + self.options.utterance_end_ms + STALE_TURN_SLACK_MS)
        return (self.endpointer.in_speech or bool(self._turn.text) or waiting or not self._events.empty()
                or self._failure is not None)

    def guess_verdict(self, start_ms: int, end_ms: int) -> bool | None:
        """Whether the turn guessed over [start_ms, end_ms) closed with the guessed words (True), or with more
        or other words (False, also once a later guess in the same Deepgram turn brought more words); None
        while neither has happened."""
        return self._verdicts.get((start_ms, end_ms))

    def _settle_guess(self, guess: _Guess, stood: bool) -> None:
        self._verdicts[(guess.start_ms, guess.end_ms)] = stood
        while len(self._verdicts) > KEPT_VERDICTS:
            del self._verdicts[next(iter(self._verdicts))]
        if stood:
            self.early_transcripts_used += 1
        else:
            self.guesses_revised += 1

    def _offer_guess(self) -> None:
        """The turn so far as a guess, once our VAD has heard a pause after it and Deepgram has heard it all."""
        turn, endpointer = self._turn, self.endpointer
        if not self.guess_after_ms or not turn.text or not endpointer.in_speech:
            return
        if endpointer.silent_ms < self.guess_after_ms:
            return
        pending = endpointer.pending()
        if pending is None or self._processed_ms <= pending.end_ms:
            return  # Deepgram has not heard the quiet after the speech: its words may lack the last one
        previous = turn.guess
        if previous is not None:
            if (previous.start_ms, previous.end_ms) == (pending.start_ms, pending.end_ms):
                return  # one guess per pause
            if self._guess_stands(previous, turn):
                return  # the sound since the earlier guess brought no words: that guess still stands
            # Our VAD closed the earlier guess's speech and heard more in the same Deepgram turn, with more
            # words: the callee went on from that guess, and only the new one can still be the turn's end.
            self._settle_guess(previous, stood=False)
        turn.guess = _Guess(pending.start_ms, pending.end_ms, turn.text)
        asked_ms = pending.end_ms + self.guess_after_ms
        self._events.put_nowait(InterimText(turn.text, pending.start_ms, pending.end_ms, asked_ms,
                                            max(0, self._now_ms - asked_ms)))

    def _close_stale_turn(self) -> None:
        turn = self._turn
        if not turn.text or turn.end_ms is None:
            return
        past_utterance_end = self._processed_ms - turn.end_ms > self.options.utterance_end_ms + STALE_TURN_SLACK_MS
        service_silent = min(self._now_ms - self._last_message_ms, self._now_ms - turn.end_ms) > SILENT_SERVICE_MS
        if past_utterance_end or service_silent:
            log.info("deepgram_stt_turn_closed_without_end")
            self._close_turn()

    # the asyncio side
    async def next_event(self, timeout: float | None = None) -> ListenEvent | None:
        self._start()
        try:
            event = await asyncio.wait_for(self._events.get(), timeout)  # a cancelled wait takes no event
        except TimeoutError:
            return None
        if isinstance(event, DeepgramError):
            self._events.put_nowait(event)  # every later read fails the same way
            raise event
        return event

    async def aclose(self) -> None:
        self._closing = True
        runner = self._runner
        if runner is None or runner.done():
            return
        self._outbox.put_nowait(_CLOSE)
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await asyncio.shield(runner)
        except (TimeoutError, DeepgramError):
            pass
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, DeepgramError):
                await runner

    def _start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        reconnected = False
        while True:
            try:
                carried = await self._session()
            except DeepgramError as exc:
                self._fail(exc)
                return
            if carried is None:  # closed by us
                return
            if reconnected and not carried:
                self._fail(DeepgramError("Deepgram dropped the stream again before it took any audio"))
                return
            log.warning("deepgram_stt_reconnecting", connections=self.connections)
            self._close_turn()  # the words heard so far; a new socket starts a new turn
            reconnected = True

    def _fail(self, error: DeepgramError) -> None:
        log.error("deepgram_stt_failed", error=str(error))
        self._close_turn()  # the words heard so far (a reply waiting on its guess learns its verdict)
        self._failure = error
        self._events.put_nowait(error)  # read after the events before it

    async def _session(self) -> bool | None:
        """One socket. None: closed by us; else it dropped (True if it had carried audio)."""
        from websockets.exceptions import ConnectionClosed

        socket = await _connect(self.options, self.options.address())
        self.connections += 1
        clock = _SocketClock()
        sender = asyncio.get_running_loop().create_task(self._send(socket, clock))
        try:
            async for raw in socket:
                if isinstance(raw, str):
                    self._on_message(json.loads(raw), clock)
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
        if self._closing:
            return None
        log.warning("deepgram_stt_dropped", code=socket.close_code, reason=(socket.close_reason or "")[:120])
        return clock.zero_ms is not None

    async def _send(self, socket: Any, clock: _SocketClock) -> None:
        while True:
            try:
                item = await asyncio.wait_for(self._outbox.get(), self.options.keepalive_seconds)
            except TimeoutError:
                await socket.send(json.dumps({"type": "KeepAlive"}))
                continue
            if isinstance(item, str):
                await socket.send(json.dumps({"type": item}))
                if item == _CLOSE:
                    return
                continue
            at_ms, payload = item
            if clock.zero_ms is None:
                clock.zero_ms = at_ms
            try:
                await socket.send(payload)
            except Exception:
                self._outbox_unsend(item)
                raise

    def _outbox_unsend(self, item: tuple[int, bytes]) -> None:
        """A frame the dropped socket did not take goes first on the next one."""
        pending = [item]
        while not self._outbox.empty():
            pending.append(self._outbox.get_nowait())
        for entry in pending:
            self._outbox.put_nowait(entry)

    def _on_message(self, message: dict[str, Any], clock: _SocketClock) -> None:
        kind = message.get("type")
        self.messages_received += 1
        self._last_message_ms = self._now_ms
        if kind == "Results":
            self._processed_ms = max(self._processed_ms,
                                     clock.ms(message.get("start", 0.0) + message.get("duration", 0.0)))
            self._on_results(message, clock)
            self._close_stale_turn()
        if kind == "SpeechStarted" and not self._turn.started_reported:
            self._turn.started_reported = True
            self._events.put_nowait(SpeechStarted(clock.ms(message.get("timestamp", 0.0))))
        elif kind == "UtteranceEnd" and self._turn.text:
            self._close_turn()
        elif kind == "Error":
            log.warning("deepgram_stt_error", code=message.get("err_code") or message.get("description"))

    def _on_results(self, message: dict[str, Any], clock: _SocketClock) -> None:
        transcript, words = _words(message)
        turn = self._turn
        if transcript and self._last_tone_ms is not None and clock.ms(
                message.get("start", 0.0) + message.get("duration", 0.0)) <= self._last_tone_ms:
            return  # audio before the record tone: its turn was closed at the tone
        if transcript:
            if words:
                start_ms, end_ms = clock.ms(words[0]["start"]), clock.ms(words[-1]["end"])
            else:
                start_ms = clock.ms(message.get("start", 0.0))
                end_ms = clock.ms(message.get("start", 0.0) + message.get("duration", 0.0))
            if not turn.started_reported:
                turn.started_reported = True
                self._events.put_nowait(SpeechStarted(start_ms))
            turn.extend(start_ms, end_ms)
            if message.get("is_final"):
                turn.finals = [*(turn.finals or []), transcript]
                turn.interim = ""
            else:
                turn.interim = transcript
                self._events.put_nowait(InterimText(turn.text, turn.start_ms, turn.end_ms, self._now_ms, 0))
        if message.get("is_final") and (message.get("speech_final") or message.get("from_finalize")):
            self._close_turn()
        else:
            self._offer_guess()

    def _close_turn(self) -> None:
        turn = self._turn
        text = turn.text
        if not text or turn.start_ms is None or turn.end_ms is None:
            return
        self._turn = _Turn()
        self._vad_closed_ms = None
        self._answered_to_ms = max(self._answered_to_ms, turn.end_ms)
        decided = max(self._now_ms, turn.end_ms)
        start_ms, end_ms = turn.start_ms, turn.end_ms
        guess = turn.guess
        if guess is not None:
            stood = self._guess_stands(guess, turn)
            self._settle_guess(guess, stood)
            # On the guessed span when it stood, so turn-taking knows the brain has it; else the same start
            # and a later end: the turn the callee went on with.
            start_ms, end_ms = guess.start_ms, guess.end_ms if stood else max(turn.end_ms, guess.end_ms + FRAME_MS)
        self._events.put_nowait(SpeechEnded(start_ms, end_ms, decided))
        # The words come with the verdict: no recognition is left once the turn is judged over.
        self._events.put_nowait(FinalText(text, start_ms, end_ms, decided, 0))

    @staticmethod
    def _guess_stands(guess: _Guess, turn: _Turn) -> bool:
        """The turn has the guessed words and none ending after the guessed speech."""
        return _same_words(guess.text, turn.text) and turn.end_ms is not None and (
            turn.end_ms <= guess.end_ms + GUESS_END_SLACK_MS)


class _SocketClock:
    """Seconds of one socket's audio on the media timeline: its first frame is its zero."""

    def __init__(self) -> None:
        self.zero_ms: int | None = None

    def ms(self, seconds: float) -> int:
        return (self.zero_ms or 0) + round(float(seconds) * 1000)
