"""Text-to-speech with the ``espeak-ng`` program: the local voice for every language Piper's voice does not speak.

espeak-ng is a formant synthesiser: robotic but tiny, fast (milliseconds per
sentence), available from every Linux distribution (Debian: ``apt-get
install espeak-ng``) and it speaks about a hundred languages, Hebrew, Arabic,
Russian and French included. Which ones this machine has is read once from
``espeak-ng --voices`` (``installed_espeak_languages``). It writes a WAV to
stdout whose header carries no real length (it streams), so the samples are
read from the ``data`` chunk to the end of the output.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import struct
import subprocess

import numpy as np

from byourside_server.voice.audio import TELEPHONE_RATE, resample
from byourside_server.voice.ports import TextToSpeech

ESPEAK = "espeak-ng"
DEFAULT_ESPEAK_VOICE = "en-us"
VOICES_TIMEOUT_SECONDS = 10.0


class EspeakError(RuntimeError):
    pass


def espeak_available() -> bool:
    return shutil.which(ESPEAK) is not None


class EspeakLanguages:
    """What an espeak-ng installation speaks: BCP-47 tags to its voices, as ``espeak-ng --voices`` lists them.

    Each voice is listed under its own language code (``fr-fr``) and, with a
    priority, under the broader tags it also serves (``(fr 5)``, ``(zh 5)``);
    a tag maps to the voice of the lowest priority number, espeak-ng's own
    choice.
    """

    def __init__(self, by_tag: dict[str, str], genders: frozenset[str] = frozenset()) -> None:
        self.by_tag = by_tag  # lower-case tag -> the espeak-ng voice (its language code) that speaks it
        self.genders = genders

    @classmethod
    def parse(cls, listing: str) -> EspeakLanguages:
        best: dict[str, tuple[int, str]] = {}
        genders = set()
        for line in listing.splitlines()[1:]:
            columns = line.split()
            if len(columns) < 5 or not columns[0].isdigit():
                continue
            priority, code, age_gender = int(columns[0]), columns[1].lower(), columns[2]
            genders.add({"M": "male", "F": "female"}.get(age_gender.rpartition("/")[2], ""))
            served = [(code, priority)]
            # "Other Languages": "(tag priority)" groups after the voice's file.
            for group in " ".join(columns[5:]).replace(")(", ") (").split(") "):
                tag, _, number = group.strip("() ").partition(" ")
                if tag and number.strip().isdigit():
                    served.append((tag.lower(), int(number)))
            for tag, rank in served:
                if tag not in best or rank < best[tag][0]:
                    best[tag] = (rank, code)
        return cls({tag: code for tag, (_, code) in best.items()}, frozenset(genders - {""}))

    @property
    def languages(self) -> tuple[str, ...]:
        """The primary subtags spoken (``en``, ``fr``, ``he``, ``zh`` ...), sorted."""
        return tuple(sorted({tag.split("-")[0] for tag in self.by_tag}))

    @property
    def gender(self) -> str | None:
        return next(iter(self.genders)) if len(self.genders) == 1 else None

    def voice_for(self, language: str | None) -> str | None:
        """The espeak-ng voice for a BCP-47 tag: the whole tag (``pt-BR``), else its primary subtag; None if none."""
        tag = (language or "").strip().lower().replace("_", "-")
        if not tag or tag == "auto":
            return None
        return self.by_tag.get(tag) or self.by_tag.get(tag.split("-")[0])


@functools.cache
def installed_espeak_languages() -> EspeakLanguages:
    """The languages of the espeak-ng on this machine, read once per process (none when it is missing or fails)."""
    if not espeak_available():
        return EspeakLanguages({})
    try:
        listed = subprocess.run([ESPEAK, "--voices"], capture_output=True, text=True, check=True,
                                timeout=VOICES_TIMEOUT_SECONDS)
    except (OSError, subprocess.SubprocessError):
        return EspeakLanguages({})
    return EspeakLanguages.parse(listed.stdout)


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
    def __init__(self, voice: str = DEFAULT_ESPEAK_VOICE, words_per_minute: int = 165) -> None:
        if not espeak_available():
            raise EspeakError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
        self.voice, self.words_per_minute = voice, words_per_minute

    def for_call(self, voice: str | None = None, language: str | None = None) -> EspeakTTS:
        """This speaker in the call's language (espeak-ng has one voice per language, so ``voice`` picks nothing);
        a language espeak-ng lacks keeps this speaker's."""
        chosen = installed_espeak_languages().voice_for(language)
        if chosen is None or chosen == self.voice:
            return self
        return EspeakTTS(chosen, self.words_per_minute)

    async def synthesize(self, text: str) -> np.ndarray:
        process = await asyncio.create_subprocess_exec(
            ESPEAK, "-v", self.voice, "-s", str(self.words_per_minute), "--stdout", "--stdin",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate(text.encode())  # stdin, not argv: words stay out of `ps`
        if process.returncode != 0:
            raise EspeakError(f"espeak-ng failed (exit {process.returncode}): {err.decode(errors='replace')[:200]}")
        pcm, rate = _wav_samples(out)
        return resample(pcm, rate, TELEPHONE_RATE)
