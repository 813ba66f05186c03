"""Which voices and languages this deployment speaks, from its settings (the catalogue is voice_catalogue.py).

What speaks depends on BYS_REALTIME: the realtime model's own voices, or, for
the cascaded engine, the voices of BYS_TTS. A request's ``voice`` must be a
contract default name or one of those (``is_known``). A call's language must
be one the deployment can conduct it in (``unspeakable``): a realtime model
speaks every language it knows; the offline agent's phrases are English; an
LLM brain on an audio carrier speaks what its voices speak; on the text
simulator it writes any language.
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
                       "an LLM brain (BYS_LLM_BASE_URL and BYS_LLM_MODEL) with a cloud voice (BYS_TTS=cartesia, "
                       "elevenlabs or openai): GET /v1/agent/voices lists what each voice speaks.")


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
    return [Voice(n, "piper", langs, "male") for n, langs in LOCAL_VOICES.items()]


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
    return (f"This deployment's voices ({voices[0].provider}) speak {', '.join(sorted(spoken))}, not {language}. "
            f"{MORE_LANGUAGES_HINT}")
