"""The voices this deployment can speak, and what a request's ``voice`` may name.

Pure data and settings, so the HTTP edge (GET /v1/agent/voices, placement's
``invalid_voice`` check) and the realtime adapters share one list without
importing each other. What speaks depends on BYS_REALTIME: the realtime
model's own voices, or, for the cascaded engine, the local TTS voice.

The contract's default names (OpenAI's: ``alloy``, ``echo``, ...) are always
accepted and map to a voice of each provider (``resolve``); any other name
must be one of the deployment's voices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from byourside_server.settings import Settings

CONTRACT_NAMES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")

# gpt-realtime's voices (OpenAI's voice guide); each speaks every language the model does.
OPENAI_VOICES = {"alloy": None, "ash": "male", "ballad": "male", "coral": "female", "echo": "male",
                 "sage": "female", "shimmer": "female", "verse": "male", "marin": "female", "cedar": "male"}
# Gemini Live's prebuilt voices (the Live API's speech guide); multilingual.
GEMINI_VOICES = {"Puck": "male", "Charon": "male", "Kore": "female", "Fenrir": "male", "Aoede": "female",
                 "Leda": "female", "Orus": "male", "Zephyr": "female"}
GEMINI_FOR_CONTRACT = {"alloy": "Puck", "echo": "Charon", "shimmer": "Kore", "nova": "Aoede", "onyx": "Orus",
                       "fable": "Fenrir", "coral": "Leda", "sage": "Zephyr", "ash": "Charon", "ballad": "Orus",
                       "verse": "Puck"}
# The cascaded engine's packaged Piper voice (BYS_TTS_VOICE=packaged:joe): US English.
LOCAL_VOICES = {"joe": ("en",)}


@dataclass(frozen=True)
class Voice:
    name: str
    provider: str
    languages: tuple[str, ...]  # BCP-47 primary subtags; ("*",) speaks every language the model does
    gender: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "provider": self.provider, "languages": list(self.languages),
                "gender": self.gender}


def deployment_voices(settings: Settings) -> list[Voice]:
    realtime = settings.realtime.strip().lower()
    if realtime == "openai":
        return [Voice(n, "openai", ("*",), g) for n, g in OPENAI_VOICES.items()]
    if realtime == "gemini":
        return [Voice(n, "gemini", ("*",), g) for n, g in GEMINI_VOICES.items()]
    return [Voice(n, "piper", langs, "male") for n, langs in LOCAL_VOICES.items()]


def is_known(name: str, settings: Settings) -> bool:
    """Whether a request may name this voice: a contract default name or one of the deployment's voices."""
    wanted = name.strip().lower()
    return wanted in CONTRACT_NAMES or any(v.name.lower() == wanted for v in deployment_voices(settings))


def resolve_gemini(name: str) -> str:
    by_lower = {n.lower(): n for n in GEMINI_VOICES}
    return by_lower.get(name.lower()) or GEMINI_FOR_CONTRACT.get(name.lower(), "Puck")


def resolve_openai(name: str) -> str:
    return name.lower() if name.lower() in OPENAI_VOICES else "alloy"
