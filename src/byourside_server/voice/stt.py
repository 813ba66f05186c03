"""Speech-to-text with faster-whisper (CTranslate2 Whisper), on the CPU.

The model is given by name (downloaded by faster-whisper on a machine with
internet), by directory, or as ``packaged:whisper-base`` (assembled from the
packages, see voice/models.py). Transcription runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import numpy as np

from byourside_server.voice.audio import resample, to_float
from byourside_server.voice.models import PACKAGED_WHISPER, packaged_whisper
from byourside_server.voice.ports import SpeechToText

WHISPER_RATE = 16_000


def whisper_language(tag: str | None) -> str | None:
    """Whisper's code for a BCP-47 tag (``he-IL`` -> ``he``); None for ``auto`` or a language Whisper lacks."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    code = (tag or "").split("-")[0].strip().lower()
    code = {"iw": "he", "nb": "no"}.get(code, code)  # older or regional codes Whisper knows by another name
    return code if code in _LANGUAGE_CODES else None


class FasterWhisperSTT(SpeechToText):
    def __init__(self, model, language: str | None, lock: threading.Semaphore | None = None,
                 workers: int = 1) -> None:
        self.model = model
        self.language = language  # Whisper's code ("en", "he", ...); None: detected per utterance
        # As many transcriptions at once as the model has workers (see ``load``); the rest wait their turn, and
        # one whose caller went away while it waited is skipped.
        self._lock = lock or threading.BoundedSemaphore(workers)

    def for_language(self, language: str | None) -> FasterWhisperSTT:
        """The same model (and its lock) transcribing in a call's language (None: this one's); ``auto``, or a
        language Whisper lacks, is detected per utterance."""
        code = whisper_language(language)
        if language is None or code == self.language:
            return self
        return FasterWhisperSTT(self.model, code, self._lock)

    @classmethod
    def load(cls, name_or_path: str, cache_dir: Path, language: str = "en", threads: int = 2,
             workers: int = 2) -> FasterWhisperSTT:
        """``workers`` transcriptions can run at once on one copy of the weights (CTranslate2 replicas). Two: a
        turn's transcription never waits behind an early guess at a pause the callee went on from, which
        cannot be stopped once the model runs it."""
        from faster_whisper import WhisperModel

        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # it logs every utterance's duration

        source = str(packaged_whisper(cache_dir)) if name_or_path == PACKAGED_WHISPER else name_or_path
        model = WhisperModel(source, device="cpu", compute_type="int8", cpu_threads=threads, num_workers=workers)
        return cls(model, language, workers=workers)

    def _run(self, audio: np.ndarray, abandoned: threading.Event) -> str:
        with self._lock:
            if abandoned.is_set():
                return ""  # its caller went away while it waited for the model: do not spend the CPU
            segments, _ = self.model.transcribe(
                audio, language=self.language, beam_size=1, condition_on_previous_text=False,
                without_timestamps=True, vad_filter=False)
            return " ".join(s.text.strip() for s in segments if s.no_speech_prob < 0.8).strip()

    async def transcribe(self, pcm: np.ndarray, sample_rate: int) -> str:
        audio = to_float(resample(pcm, sample_rate, WHISPER_RATE))
        # Cancelling the task cannot stop a transcription under way, but one still waiting for the model
        # (an early guess at a pause the callee went on from) is skipped, so stale guesses never pile up.
        abandoned = threading.Event()
        try:
            return await asyncio.to_thread(self._run, audio, abandoned)
        except asyncio.CancelledError:
            abandoned.set()
            raise
