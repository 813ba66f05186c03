"""The voice ports: speech-to-text (batch and streaming) and text-to-speech (whole or incremental).

- ``SpeechToText``: a batch recogniser (one finished utterance in, its text
  out). faster-whisper is one (voice/stt.py).
- ``RecognitionStream``: the streaming port, the one the engine listens
  through: 20 ms frames in, events out (speech started, interim text, final
  text, end of speech). A batch recogniser plus our endpointer is lifted into
  it by ``voice/listening.py``; a streaming service (Deepgram, ...) would be an
  adapter of its own.
- ``TextToSpeech``: text in, 8 kHz audio out. ``stream`` speaks a whole text
  sentence by sentence; ``incremental`` takes text as it arrives (a model's
  tokens) and starts rendering at the first clause. Each piece of audio
  comes as a ``SpeechChunk`` with the words it says, so a reply cut short can
  be reported by the words that were actually heard.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_CLAUSE_END = re.compile(r"(?<=[.!?;:,])\s+")
FIRST_CLAUSE_MIN_WORDS = 3  # a first clause shorter than this waits for more text (Piper needs some context)


def split_sentences(text: str) -> list[str]:
    """Sentences to synthesise one by one, so speaking starts before the whole reply is rendered."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p]


# -- speech-to-text --


class SpeechToText(ABC):
    @abstractmethod
    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> str:
        """Text of an utterance (int16 PCM); empty when nothing intelligible was said."""

    def for_language(self, language: str | None) -> SpeechToText:
        """This recogniser for one call's language (a BCP-47 tag, or ``auto``; None: as configured).

        Default: unchanged (a recogniser of one language)."""
        return self


@dataclass(frozen=True)
class SpeechStarted:
    at_ms: int  # where the speech began on the media timeline


@dataclass(frozen=True)
class InterimText:
    text: str  # the turn so far, as a guess that may still change
    start_ms: int
    end_ms: int
    asked_ms: int = 0  # timeline ms at which the guess was asked for (after the early silence)
    stt_ms: int = 0  # how long the recognition took (media timeline ms)


@dataclass(frozen=True)
class SpeechEnded:
    start_ms: int
    end_ms: int  # end of the speech (the closing silence not counted)
    decided_ms: int  # timeline ms at which the turn was judged over


@dataclass(frozen=True)
class FinalText:
    text: str  # empty when nothing intelligible was said (a cough, noise)
    start_ms: int
    end_ms: int
    decided_ms: int
    stt_ms: int  # recognition time still left when the turn was judged over (media timeline ms)


RecognitionEvent = SpeechStarted | InterimText | SpeechEnded | FinalText


class RecognitionStream(ABC):
    """One call's streaming recogniser: feed every inbound frame, read events in order."""

    @abstractmethod
    def feed(self, frame: np.ndarray, at_ms: int) -> None:
        """One 20 ms, 8 kHz int16 frame of the callee's audio (called on the media clock; must not block)."""

    @abstractmethod
    async def next_event(self, timeout: float | None = None) -> RecognitionEvent | None:
        """The next event, or None when ``timeout`` seconds pass first."""

    @abstractmethod
    def finish(self, at_ms: int) -> None:
        """The audio has ended: the turn in progress ends here and is still recognised."""

    @abstractmethod
    async def aclose(self) -> None:
        """Stop recognising; pending work is dropped."""


# -- text-to-speech --


@dataclass(frozen=True)
class SpeechChunk:
    """A piece of rendered speech and the words it says."""

    text: str
    pcm: np.ndarray  # 8 kHz int16
    word_end_ms: tuple[int, ...] | None = None  # when the TTS knows it: where each word of ``text`` ends

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) * 1000 // 8000

    def heard(self, played_ms: int) -> str:
        """The words of ``text`` whose audio had fully left after ``played_ms`` of playing."""
        words = self.text.split()
        if played_ms >= self.duration_ms:
            return self.text
        if self.word_end_ms is not None and len(self.word_end_ms) == len(words):
            return " ".join(w for w, end in zip(words, self.word_end_ms) if end <= played_ms)
        # No timing from the TTS: words are taken to end in proportion to the characters before them.
        total = max(1, len(self.text))
        kept, position = [], 0
        for word in words:
            position = self.text.index(word, position) + len(word)
            if position / total * self.duration_ms > played_ms:
                break
            kept.append(word)
        return " ".join(kept)


class TextToSpeech(ABC):
    @abstractmethod
    async def synthesize(self, text: str) -> np.ndarray:
        """Render ``text`` as 8 kHz int16 PCM."""

    def for_call(self, voice: str | None = None, language: str | None = None) -> TextToSpeech:
        """This speaker with one call's voice (a catalogue or contract name) and language (a BCP-47 tag).

        Default: unchanged (a speaker with one voice, such as the packaged Piper voice)."""
        return self

    async def render(self, text: str) -> SpeechChunk:
        """``text`` as a chunk; a TTS that knows its word timings fills ``word_end_ms``."""
        return SpeechChunk(text, await self.synthesize(text))

    async def stream(self, text: str) -> AsyncIterator[SpeechChunk]:
        """``text`` sentence by sentence; the next sentence renders while the previous one plays."""
        speech = self.incremental(first_clause=False)
        speech.push(text)
        speech.end()
        async for chunk in speech:
            yield chunk

    def incremental(self, first_clause: bool = True) -> IncrementalSpeech:
        """Speech for text that arrives in pieces."""
        return IncrementalSpeech(self, first_clause=first_clause)


class IncrementalSpeech:
    """Text pushed in pieces, rendered sentence by sentence as soon as each is complete.

    With ``first_clause`` the first piece of speech ends at the first clause
    boundary (a comma, colon or sentence end after at least
    ``FIRST_CLAUSE_MIN_WORDS`` words), so speaking starts before the first
    sentence is complete. One renderer works through the segments in order as
    they are cut, so the next one renders while the previous one plays.
    Iterate to get the chunks in order; ``aclose`` drops what is left.
    """

    def __init__(self, tts: TextToSpeech, first_clause: bool = True) -> None:
        self.tts = tts
        self._first_clause = first_clause
        self._buffer = ""
        self._texts: asyncio.Queue[str | None] = asyncio.Queue()
        self._chunks: asyncio.Queue[SpeechChunk | BaseException | None] = asyncio.Queue()
        self._renderer: asyncio.Task | None = None
        self._ended = False
        self.text = ""  # everything pushed so far

    def push(self, piece: str) -> None:
        if self._ended or not piece:
            return
        self.text += piece
        self._buffer += piece
        while True:
            cut = self._next_cut()
            if cut is None:
                return
            self._emit(self._buffer[:cut])
            self._buffer = self._buffer[cut:]

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._emit(self._buffer)
            self._buffer = ""
            self._texts.put_nowait(None)
            self._start()

    def _next_cut(self) -> int | None:
        pattern = _CLAUSE_END if self._first_clause else _SENTENCE_END
        for match in pattern.finditer(self._buffer):
            if not self._first_clause or len(self._buffer[:match.start()].split()) >= FIRST_CLAUSE_MIN_WORDS:
                self._first_clause = False
                return match.end()
        return None

    def _emit(self, text: str) -> None:
        text = " ".join(text.split())
        if text:
            self._texts.put_nowait(text)
            self._start()

    def _start(self) -> None:
        if self._renderer is None:
            self._renderer = asyncio.get_running_loop().create_task(self._render())

    async def _render(self) -> None:
        while True:
            text = await self._texts.get()
            if text is None:
                self._chunks.put_nowait(None)
                return
            try:
                self._chunks.put_nowait(await self.tts.render(text))
            except Exception as exc:  # noqa: BLE001 - handed to the reader, which raises it
                self._chunks.put_nowait(exc)
                return

    async def __aiter__(self) -> AsyncIterator[SpeechChunk]:
        try:
            while True:
                item = await self._chunks.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._renderer is not None and not self._renderer.done():
            self._renderer.cancel()
