"""Which voices and languages this deployment speaks, from its settings (the catalogue is voice_catalogue.py).

What speaks depends on BYS_REALTIME: the realtime model's own voices, or, for
the cascaded engine, the voices of BYS_TTS. A request's ``voice`` must be a
contract default name or one of those (``is_known``). A call's language must
be one the deployment can conduct it in (``unspeakable``): a realtime model
speaks every language it knows; the offline agent's phrases are English; an
LLM brain on an audio carrier speaks what its voices speak; on the text
simulator it writes any language. The local voices (BYS_TTS=local) are
Piper's packaged English voice and espeak-ng in every language the
espeak-ng on this machine has (read once per process from ``espeak-ng
--voices``), as BYS_TTS_ENGINE allows.
"""

from __future__ import annotations

from byourside_server.agent.realtime.providers import realtime_enabled
from byourside_server.settings import Settings
from byourside_server.voice_catalogue import (
    CARTESIA_LANGUAGES,
    CARTESIA_VOICES,
    CONTRACT_NAMES,
    ELEVENLABS_LANGUAGES,
    ELEVENLABS_VOICES,
    ESPEAK_VOICE,
    GEMINI_VOICES,
    LOCAL_VOICES,
    OPENAI_TTS_VOICES,
    OPENAI_VOICES,
    Voice,
    primary_language,
)

# The offline agent's phrases (agent/phrases.py) and its understanding of replies are English.
OFFLINE_AGENT_LANGUAGES = ("en",)
AUDIO_CARRIERS = ("sip", "twilio", "telnyx")  # BYS_TELEPHONY values whose calls a voice speaks
MORE_LANGUAGES_HINT = ("For other languages set BYS_REALTIME=openai or gemini (a realtime model speaks them), or "
                       "an LLM brain (BYS_LLM_BASE_URL and BYS_LLM_MODEL) with the local voices (espeak-ng speaks "
                       "the languages Piper's voice does not, BYS_TTS_ENGINE=auto) or a cloud voice (BYS_TTS="
                       "cartesia, elevenlabs or openai): GET /v1/agent/voices lists what each voice speaks.")
LANGUAGES_NAMED_AT_MOST = 12  # a refusal names the deployment's languages up to this many, else counts them


def deployment_voices(settings: Settings) -> list[Voice]:
    realtime = settings.realtime.strip().lower()
    if realtime == "openai":
        return [Voice(n, "openai", ("*",), g) for n, g in OPENAI_VOICES.items()]
    if realtime == "gemini":
        return [Voice(n, "gemini", ("*",), g) for n, g in GEMINI_VOICES.items()]
    tts = settings.voice.tts
    if tts == "openai":
        return [Voice(n, "openai", ("*",), g) for n, g in OPENAI_TTS_VOICES.items()]
    if tts == "cartesia":
        return [Voice(n, "cartesia", CARTESIA_LANGUAGES, g) for n, (_, g) in CARTESIA_VOICES.items()]
    if tts == "elevenlabs":
        return [Voice(n, "elevenlabs", ELEVENLABS_LANGUAGES, g) for n, (_, g) in ELEVENLABS_VOICES.items()]
    return local_voices(settings.voice.tts_engine)


def local_voices(engine: str) -> list[Voice]:
    """The local voices BYS_TTS_ENGINE allows: Piper's (not with ``espeak``), espeak-ng's (not with ``piper``,
    and only when espeak-ng is installed)."""
    from byourside_server.voice.espeak import installed_espeak_languages

    voices = [] if engine == "espeak" else [Voice(n, "piper", langs, "male") for n, langs in LOCAL_VOICES.items()]
    espeak = installed_espeak_languages() if engine != "piper" else None
    if espeak is not None and espeak.languages:
        voices.append(Voice(ESPEAK_VOICE, "espeak", espeak.languages, espeak.gender))
    return voices


def is_known(name: str, settings: Settings) -> bool:
    """Whether a request may name this voice: a contract default name or one of the deployment's voices."""
    wanted = name.strip().lower()
    return wanted in CONTRACT_NAMES or any(v.name.lower() == wanted for v in deployment_voices(settings))


def unspeakable(language: str | None, settings: Settings) -> str | None:
    """Why this deployment cannot conduct a call in ``language`` (the refusal's message), or None when it can."""
    wanted = primary_language(language)
    if wanted is None or realtime_enabled(settings):
        return None
    if settings.effective_brain == "offline":
        if wanted in OFFLINE_AGENT_LANGUAGES:
            return None
        return f"The offline agent speaks only English (en), not {language}. {MORE_LANGUAGES_HINT}"
    if settings.telephony not in AUDIO_CARRIERS:
        return None  # text lines: the LLM writes the call's language
    voices = deployment_voices(settings)
    spoken = {lang for voice in voices for lang in voice.languages}
    if "*" in spoken or wanted in spoken:
        return None
    providers = ", ".join(dict.fromkeys(voice.provider for voice in voices)) or "none installed"
    named = (", ".join(sorted(spoken)) if len(spoken) <= LANGUAGES_NAMED_AT_MOST
             else f"{len(spoken)} languages")
    return f"This deployment's voices ({providers}) speak {named or 'nothing'}, not {language}. {MORE_LANGUAGES_HINT}"
