"""The listening half of a voice call: a batch recogniser plus our endpointer, as a streaming recogniser.

``BatchRecognition`` is the adapter that lifts a batch ``SpeechToText``
(faster-whisper) into the streaming ``RecognitionStream`` port. Fed one 20 ms
frame at a time on the media clock, it:

- endpoints the audio (voice/vad.py: webrtcvad, the turn detector, the
  silence fallback) and reports ``SpeechStarted`` and ``SpeechEnded``;
- transcribes the turn so far once the callee has been quiet for
  ``stt_early_ms`` (early transcription), reported as ``InterimText``; if the
  turn then closes at that same point the guess is the final text, so most of
  the recognition is already behind us when the turn is judged over;
- transcribes every closed turn in the background, in order, and reports
  ``FinalText``;
- optionally hears an answering machine's record tone (``ToneHeard``, in
  order with the texts; the endpointer's "utterance" made of the tone itself
  is dropped, and speech running into the tone is closed before it).

The voice engine (voice/engine.py) and the SIP simulator's callee
(telephony/simulator/over_sip.py) both listen through it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import structlog

from byourside_server.voice.audio import FRAME_MS, TELEPHONE_RATE
from byourside_server.voice.ports import (
    FinalText,
    InterimText,
    RecognitionEvent,
    RecognitionStream,
    SpeechEnded,
    SpeechStarted,
    SpeechToText,
    TextToSpeech,
)
from byourside_server.voice.tones import BeepDetector
from byourside_server.voice.vad import Endpointer, Utterance

log = structlog.get_logger(__name__)


class SpeechModels(Protocol):
    """What the recogniser takes from the voice factory (voice/factory.py's ``VoiceFactory``)."""

    stt_early_ms: int

    def endpointer(self) -> Endpointer: ...

    @property
    def loaded_stt(self) -> SpeechToText | None: ...

    async def load(self) -> tuple[SpeechToText, TextToSpeech]: ...


@dataclass(frozen=True)
class ToneHeard:
    """An answering machine's record tone began at ``at_ms``."""

    at_ms: int


ListenEvent = RecognitionEvent | ToneHeard


class HeardSoFar:
    """Where a recogniser stands on the media timeline and what its record-tone detector (``tones``) heard."""

    tones: BeepDetector | None
    _now_ms: int
    _last_tone_ms: int | None
    # Whether the recogniser's own verdict closes a turn (a streaming service) rather than our endpointer's
    # silence; such a recogniser answers ``guess_verdict``.
    closes_turns = False

    def guess_verdict(self, start_ms: int, end_ms: int) -> bool | None:
        """The recogniser's verdict on the turn it guessed over [start_ms, end_ms) (``InterimText``): True, it
        closed with the guessed words; False, with more or others; None, not closed yet (or no verdict of
        its own: the endpointer closing the turn is the verdict)."""
        return None

    @property
    def now_ms(self) -> int:
        """The end of the latest frame fed, on the media timeline."""
        return self._now_ms

    @property
    def last_tone_ms(self) -> int | None:
        """Where the latest record tone began (None: none heard)."""
        return self._last_tone_ms

    @property
    def in_tone(self) -> bool:
        return self.tones is not None and self.tones.in_tone


class BatchRecognition(HeardSoFar, RecognitionStream):
    def __init__(self, voice: SpeechModels, *, detect_tones: bool = False, transcribe_early: bool = True,
                 language: str | None = None) -> None:
        self.voice = voice
        self.language = language  # the call's BCP-47 tag, for the recogniser (None: its own setting)
        self.endpointer = voice.endpointer()
        self.tones = BeepDetector() if detect_tones else None
        self._last_tone_ms: int | None = None
        self._events: asyncio.Queue[ListenEvent] = asyncio.Queue()
        # Closed turns (with the decision time and the early transcription taken at that very end) and tones.
        self._closed: asyncio.Queue[ToneHeard | tuple[Utterance, int, asyncio.Task[str] | None]] = asyncio.Queue()
        self._unfinished = 0  # closed turns (and tones) not yet reported
        self._early: tuple[Utterance, asyncio.Task[str]] | None = None
        early_ms = voice.stt_early_ms // FRAME_MS * FRAME_MS
        # Silence at which to transcribe early; -1: never.
        self._early_at_ms = early_ms if early_ms > 0 and transcribe_early else -1
        self.early_transcripts_used = 0
        self._was_in_speech = False
        self._worker: asyncio.Task | None = None
        self._now_ms = 0

    # the media clock side
    def feed(self, frame: np.ndarray, at_ms: int) -> None:
        self._now_ms = at_ms + FRAME_MS
        utterance = self.endpointer.feed(frame)
        if self.tones is not None:
            tone_at = self.tones.feed(frame)
            if tone_at is not None:
                self._last_tone_ms = tone_at
                # A greeting that runs into the tone without a pause is heard before the tone, not after it.
                for heard in (utterance, self.endpointer.flush()):
                    if heard is not None and not self._is_the_tone(heard):
                        self._close(heard)
                utterance = None
                self._enqueue(ToneHeard(tone_at))
        if utterance is not None and self._is_the_tone(utterance):
            utterance = None
        started = self.endpointer.speech_start_ms
        if started is not None and not self._was_in_speech:
            self._events.put_nowait(SpeechStarted(started))
        self._was_in_speech = self.endpointer.in_speech
        if utterance is not None:
            self._close(utterance)
        elif self.endpointer.silent_ms == self._early_at_ms:
            self._transcribe_early()

    def finish(self, at_ms: int) -> None:
        last = self.endpointer.flush()
        if last is not None and not self._is_the_tone(last):
            self._close(last)

    def _is_the_tone(self, utterance: Utterance) -> bool:
        """The endpointer also hears a record tone as a short "utterance"; STT would invent words for it."""
        tone = self._last_tone_ms
        return tone is not None and utterance.start_ms >= tone - 300 and utterance.end_ms - utterance.start_ms < 1500

    def _close(self, utterance: Utterance) -> None:
        self._events.put_nowait(SpeechEnded(utterance.start_ms, utterance.end_ms, self._now_ms))
        early, self._early = self._early, None
        if early is not None and (early[0].start_ms, early[0].end_ms) != (utterance.start_ms, utterance.end_ms):
            early[1].cancel()  # a guess at a pause the callee went on from
            early = None
        self._enqueue((utterance, self._now_ms, early[1] if early is not None else None))

    def _enqueue(self, item) -> None:
        self._unfinished += 1
        self._closed.put_nowait(item)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._report_in_order())

    def _transcribe_early(self) -> None:
        """Start transcribing the turn so far; a newer pause replaces an older guess."""
        stt, pending = self.voice.loaded_stt, self.endpointer.pending()
        if stt is None or pending is None:
            return
        self._drop_early()
        task = asyncio.get_running_loop().create_task(
            stt.for_language(self.language).transcribe(pending.pcm, TELEPHONE_RATE))
        asked_ms = self._now_ms
        task.add_done_callback(lambda t: self._interim(pending, t, asked_ms))
        self._early = (pending, task)

    def _interim(self, pending: Utterance, task: asyncio.Task[str], asked_ms: int) -> None:
        if not task.cancelled() and task.exception() is None and task.result():
            self._events.put_nowait(InterimText(task.result(), pending.start_ms, pending.end_ms, asked_ms,
                                                max(0, self._now_ms - asked_ms)))

    def _drop_early(self) -> None:
        if self._early is not None:
            self._early[1].cancel()
            self._early = None

    # the asyncio side
    @property
    def unfinished(self) -> bool:
        """Speech is in progress, a closed turn is still being recognised, or its events are still unread."""
        return self.endpointer.in_speech or self._unfinished > 0 or not self._events.empty()

    async def next_event(self, timeout: float | None = None) -> ListenEvent | None:
        try:
            return await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            return None

    async def _report_in_order(self) -> None:
        while True:
            item = await self._closed.get()
            try:
                if isinstance(item, ToneHeard):
                    self._events.put_nowait(item)
                    continue
                utterance, decided_ms, early = item
                try:
                    text = await self._transcribe(utterance, early)
                except Exception:
                    log.exception("stt_failed")
                    text = ""
                # On the media timeline, like every other figure of the turn: the recognition still left
                # when the turn was judged over (0 when the early transcription had already finished).
                stt_ms = max(0, self._now_ms - decided_ms)
                self._events.put_nowait(FinalText(text, utterance.start_ms, utterance.end_ms, decided_ms, stt_ms))
            finally:
                self._unfinished -= 1

    async def _transcribe(self, utterance: Utterance, early: asyncio.Task[str] | None) -> str:
        """The utterance's text: the early transcription when the turn ended where it was taken."""
        if early is not None:
            try:
                text = await early
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():
                    raise
            else:
                self.early_transcripts_used += 1
                return text
        stt, _ = await self.voice.load()
        return await stt.for_language(self.language).transcribe(utterance.pcm, TELEPHONE_RATE)

    def events_now(self) -> list[ListenEvent]:
        """The events already reported and not yet read, without waiting."""
        events = []
        while not self._events.empty():
            events.append(self._events.get_nowait())
        return events

    async def drain(self) -> None:
        """Wait until every closed turn has been reported."""
        while self._unfinished > 0:
            await asyncio.sleep(0.02)

    async def aclose(self) -> None:
        self._drop_early()
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
