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


class FasterWhisperSTT(SpeechToText):
    def __init__(self, model, language: str) -> None:
        self.model = model
        self.language = language
        self._lock = threading.Lock()  # one transcription at a time per model: CPU bound anyway

    @classmethod
    def load(cls, name_or_path: str, cache_dir: Path, language: str = "en", threads: int = 2) -> FasterWhisperSTT:
        from faster_whisper import WhisperModel

        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # it logs every utterance's duration

        source = str(packaged_whisper(cache_dir)) if name_or_path == PACKAGED_WHISPER else name_or_path
        model = WhisperModel(source, device="cpu", compute_type="int8", cpu_threads=threads)
        return cls(model, language)

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
