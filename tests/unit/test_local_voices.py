"""The local voices in other languages: espeak-ng speaks what Piper's English voice does not.

What espeak-ng has is read from ``espeak-ng --voices`` (a fixed listing here,
the installed program where it is marked); the local speaker picks espeak-ng
by the call's language or by the ``espeak`` voice name; the catalogue lists
espeak-ng with its languages and placement accepts them for an LLM brain on
an audio carrier, while the offline agent keeps to English.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from support import IN_CI

from byourside_server.settings import Settings
from byourside_server.voice.espeak import (
    EspeakLanguages,
    EspeakTTS,
    installed_espeak_languages,
)
from byourside_server.voice.ports import TextToSpeech
from byourside_server.voice.tts import LocalSpeaker
from byourside_server.voice_policy import deployment_voices, is_known, unspeakable

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None and not IN_CI,
                                  reason="espeak-ng is not installed: run `make system-packages` (Debian espeak-ng)")

# Lines of `espeak-ng --voices` (espeak-ng 1.51, Debian 12), columns as the program prints them.
LISTING = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  cmn             --/M      Chinese_(Mandarin,_latin_as_English) sit/cmn              (zh-cmn 5)(zh 5)
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  es              --/M      Spanish_(Spain)    roa/es               
 5  es-419          --/M      Spanish_(Latin_America) roa/es-419           (es-mx 6)(es 6)
 5  fr-be           --/M      French_(Belgium)   roa/fr-BE            (fr 8)
 5  fr-fr           --/M      French_(France)    roa/fr               (fr 5)
 5  he              --/M      Hebrew             sem/he               
 5  nb              --/M      Norwegian_Bokmål  gmq/nb               (no 5)
 5  pt              --/M      Portuguese_(Portugal) roa/pt               (pt-pt 5)
 5  pt-br           --/M      Portuguese_(Brazil) roa/pt-BR            (pt 6)
 5  yue             --/M      Chinese_(Cantonese) sit/yue              (zh-yue 5)(zh 8)
"""


class Piper(TextToSpeech):
    """Stands in for the packaged Piper voice (US English) where only the choice of speaker is tested."""

    language = "en"

    async def synthesize(self, text: str) -> np.ndarray:
        return np.zeros(8, np.int16)


def settings(tmp_path, **overrides) -> Settings:
    return Settings(data_dir=tmp_path, **overrides)


def test_a_tag_maps_to_the_voice_espeak_ng_itself_prefers():
    espeak = EspeakLanguages.parse(LISTING)
    assert espeak.languages == ("cmn", "en", "es", "fr", "he", "nb", "no", "pt", "yue", "zh")
    assert espeak.gender == "male"
    chosen = {tag: espeak.voice_for(tag) for tag in (
        "fr", "fr-CA", "FR-be", "he-IL", "zh", "zh-yue", "no", "pt", "pt-BR", "es-MX", "es", "en-US", "en")}
    assert chosen == {"fr": "fr-fr", "fr-CA": "fr-fr", "FR-be": "fr-be", "he-IL": "he", "zh": "cmn",
                      "zh-yue": "yue", "no": "nb", "pt": "pt", "pt-BR": "pt-br", "es-MX": "es-419", "es": "es",
                      "en-US": "en-us", "en": "en-gb"}
    assert [espeak.voice_for(tag) for tag in ("yi", "auto", "", None)] == [None, None, None, None]
    assert EspeakLanguages.parse("").languages == () and EspeakLanguages.parse("").gender is None


@needs_espeak
def test_the_installed_espeak_ng_speaks_the_allowed_regions_languages():
    installed = installed_espeak_languages()
    assert installed is installed_espeak_languages()  # read once per process
    assert {"en", "fr", "he", "ar", "ru", "de", "es"} <= set(installed.languages)
    assert "yi" not in installed.languages


@needs_espeak
def test_espeak_for_call_picks_the_voice_of_the_calls_language():
    speaker = EspeakTTS()
    assert speaker.for_call(None, "fr-FR").voice == "fr-fr"
    assert speaker.for_call("alloy", "he-IL").voice == "he"  # one voice per language: the name picks nothing
    assert speaker.for_call(None, "de").voice == "de"
    for same in (None, "auto", "yi", "en-US"):  # nothing to change, or a language espeak-ng lacks
        assert speaker.for_call(None, same) is speaker


@needs_espeak
def test_the_local_speaker_keeps_piper_for_english_and_speaks_other_languages_with_espeak():
    piper = Piper()
    local = LocalSpeaker(piper, EspeakTTS())
    for language in ("en-US", "en-GB", "en", None, "auto"):
        assert local.for_call("alloy", language) is piper
    assert local.for_call(None, "yi") is piper  # neither speaks it (placement refuses such a call)
    for language, voice in (("fr-CA", "fr-fr"), ("he-IL", "he"), ("ar", "ar"), ("ru-RU", "ru")):
        speaker = local.for_call("alloy", language)
        assert isinstance(speaker, EspeakTTS) and speaker.voice == voice
    named = local.for_call("ESPEAK", "en-US")  # the voice name picks espeak-ng, in English too
    assert isinstance(named, EspeakTTS) and named.voice == "en-us"
    assert isinstance(local.for_call("espeak", None), EspeakTTS)
    assert LocalSpeaker(piper, None).for_call("espeak", "fr") is piper  # no espeak-ng: Piper as it is


@needs_espeak
def test_the_catalogue_lists_piper_and_espeak_as_the_engine_allows(tmp_path):
    joe, espeak = deployment_voices(settings(tmp_path))
    assert (joe.name, joe.provider, joe.languages) == ("joe", "piper", ("en",))
    assert (espeak.name, espeak.provider, espeak.gender) == ("espeak", "espeak", "male")
    assert espeak.languages == installed_espeak_languages().languages and "he" in espeak.languages
    only_piper = settings(tmp_path, voice_overrides={"tts_engine": "piper"})
    assert [v.name for v in deployment_voices(only_piper)] == ["joe"]
    only_espeak = settings(tmp_path, voice_overrides={"tts_engine": "espeak"})
    assert [v.name for v in deployment_voices(only_espeak)] == ["espeak"]
    assert is_known("espeak", settings(tmp_path)) and is_known("Espeak", only_espeak)
    assert not is_known("espeak", only_piper) and not is_known("joe", only_espeak)
    assert is_known("alloy", only_espeak)  # a contract name is always accepted


@needs_espeak
def test_an_llm_brain_on_sip_speaks_espeaks_languages_and_the_offline_agent_keeps_to_english(tmp_path):
    llm_on_sip = settings(tmp_path, brain="llm", telephony="sip")
    for language in ("en-US", "fr-FR", "fr-CA", "he-IL", "de", "ar", "ru"):
        assert unspeakable(language, llm_on_sip) is None, language
    refusal = unspeakable("yi", llm_on_sip)
    assert refusal is not None and "(piper, espeak)" in refusal and "languages, not yi" in refusal
    piper_only = settings(tmp_path, brain="llm", telephony="sip", voice_overrides={"tts_engine": "piper"})
    assert "(piper) speak en, not fr-FR" in unspeakable("fr-FR", piper_only)
    offline_on_sip = settings(tmp_path, brain="offline", telephony="sip")
    for language in ("fr-FR", "he-IL"):
        assert "offline agent speaks only English" in unspeakable(language, offline_on_sip)
    assert unspeakable("en-GB", offline_on_sip) is None
