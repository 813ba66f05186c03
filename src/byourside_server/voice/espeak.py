"""Text-to-speech with the ``espeak-ng`` program: the fallback when Piper cannot be used.

espeak-ng is a formant synthesiser: robotic but tiny, fast (milliseconds per
sentence) and available from every Linux distribution (Debian: ``apt-get
install espeak-ng``). It writes a WAV to stdout whose header carries no real
length (it streams), so the samples are read from the ``data`` chunk to the
end of the output.
"""

from __future__ import annotations

import asyncio
import shutil
import struct

import numpy as np

from byourside_server.voice.audio import TELEPHONE_RATE, resample
from byourside_server.voice.ports import TextToSpeech

ESPEAK = "espeak-ng"


class EspeakError(RuntimeError):
    pass


def espeak_available() -> bool:
    return shutil.which(ESPEAK) is not None


def _wav_samples(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit mono PCM and its rate from a streamed WAV (RIFF sizes ignored)."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EspeakError("espeak-ng did not write a WAV")
    channels, rate = struct.unpack_from("<HI", data, 22)
    bits = struct.unpack_from("<H", data, 34)[0]
    start = data.find(b"data", 36)
    if channels != 1 or bits != 16 or start < 0:
        raise EspeakError("unexpected espeak-ng WAV format")
    body = data[start + 8:]
    return np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.int16), rate


class EspeakTTS(TextToSpeech):
    def __init__(self, voice: str = "en-us", words_per_minute: int = 165) -> None:
        if not espeak_available():
            raise EspeakError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
        self.voice, self.words_per_minute = voice, words_per_minute

    async def synthesize(self, text: str) -> np.ndarray:
        process = await asyncio.create_subprocess_exec(
            ESPEAK, "-v", self.voice, "-s", str(self.words_per_minute), "--stdout", "--stdin",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate(text.encode())  # stdin, not argv: words stay out of `ps`
        if process.returncode != 0:
            raise EspeakError(f"espeak-ng failed (exit {process.returncode}): {err.decode(errors='replace')[:200]}")
        pcm, rate = _wav_samples(out)
        return resample(pcm, rate, TELEPHONE_RATE)
