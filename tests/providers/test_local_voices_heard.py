"""The local speaker in French, German and Hebrew, heard back by the packaged faster-whisper in that language.

Each sentence goes through the local speaker built as a call gets it
(``load_tts("auto", "packaged:joe").for_call(voice, language)``: espeak-ng in
that language), through G.711 as on the line, and Whisper (base, the packaged
copy) transcribes it in the call's language. espeak-ng is a formant
synthesiser and whisper-base is small: the sentences are short greetings it
renders intelligibly, and the test asks for their key words, not the whole
sentence. Hebrew is the weakest (espeak-ng guesses the vowels unpointed text
leaves out): its sentence is the plainest greeting.
"""

from __future__ import annotations

import re
import shutil

import pytest
from support import IN_CI

from byourside_server.voice.audio import TELEPHONE_RATE, ulaw_decode, ulaw_encode
from byourside_server.voice.espeak import EspeakTTS
from byourside_server.voice.stt import FasterWhisperSTT
from byourside_server.voice.tts import LocalSpeaker, PiperTTS, load_tts

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None and not IN_CI,
                                reason="espeak-ng is not installed: run `make system-packages` (Debian espeak-ng)")

SENTENCES = [  # (language, sentence, key words that must come back)
    ("fr-FR", "Bonjour madame, merci beaucoup, au revoir.", {"merci", "beaucoup", "revoir"}),
    ("de-DE", "Guten Tag, ich habe eine Frage.", {"guten", "tag", "frage"}),
    ("he-IL", "שלום, תודה רבה.", {"שלום", "תודה"}),
]


@pytest.fixture(scope="module")
def whisper(tmp_path_factory) -> FasterWhisperSTT:
    return FasterWhisperSTT.load("packaged:whisper-base", tmp_path_factory.mktemp("models"), "en", 2, 1)


@pytest.fixture(scope="module")
def local_speaker() -> LocalSpeaker:
    speaker = load_tts("auto", "packaged:joe")
    assert isinstance(speaker, LocalSpeaker)
    return speaker


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


@pytest.mark.parametrize(("language", "sentence", "key_words"), SENTENCES, ids=[s[0] for s in SENTENCES])
async def test_the_local_speaker_is_understood_in_the_calls_language(whisper, local_speaker, language, sentence,
                                                                     key_words):
    speaker = local_speaker.for_call("alloy", language)
    assert isinstance(speaker, EspeakTTS)
    line_audio = ulaw_decode(ulaw_encode(await speaker.synthesize(sentence)))
    heard = await whisper.for_language(language).transcribe(line_audio, TELEPHONE_RATE)
    assert key_words <= words(heard), heard


async def test_english_stays_with_piper_and_the_espeak_voice_name_speaks_english_with_espeak(whisper, local_speaker):
    assert isinstance(local_speaker.for_call("alloy", "en-US"), PiperTTS)
    english = local_speaker.for_call("espeak", "en-US")
    assert isinstance(english, EspeakTTS)
    pcm = ulaw_decode(ulaw_encode(await english.synthesize("Good morning, thank you very much.")))
    heard = await whisper.for_language("en-US").transcribe(pcm, TELEPHONE_RATE)
    assert {"morning", "thank"} <= words(heard), heard
