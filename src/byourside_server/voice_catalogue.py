"""Every provider's voices, the languages they speak, and the names a request's ``voice`` maps to.

Pure data, imported by the speakers (voice/providers/), the realtime
adapters and voice_policy.py (which of them this deployment speaks) alike.
The contract's default names (OpenAI's: ``alloy``, ``echo``, ...) are always
accepted and map to a voice of each provider (``resolve_*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
# The request's name for the local espeak-ng voice, which speaks the languages the espeak-ng installed on the
# machine has (voice/espeak.py reads them); without this name, a call in a language Piper's voice does not
# speak is spoken by espeak-ng too.
ESPEAK_VOICE = "espeak"
# Cloud TTS for the cascaded engine (BYS_TTS). OpenAI's speech endpoint: the realtime voices plus three of
# its own; each follows the language of its text.
OPENAI_TTS_VOICES = {**OPENAI_VOICES, "fable": "male", "nova": "female", "onyx": "male"}
# Cartesia: the stable voices Cartesia recommends for agents (name -> voice id, gender); sonic-3 speaks any
# of its languages with any voice (the request's ``language``).
CARTESIA_VOICES = {"Katie": ("f786b574-daa5-4673-aa0c-cbe3e8534c02", "female"),
                   "Jacqueline": ("9626c31c-bec5-4cca-baa8-f8ba9e84c8bc", "female"),
                   "Brooke": ("6f84f4b8-58a2-430c-8c79-688dad597532", "female"),
                   "Ronald": ("5ee9feff-1265-424a-9d7f-8e4d431a12c7", "male"),
                   "Jordan": ("87bc56aa-ab01-4baa-9071-77d497064686", "male"),
                   "Keith": ("9fa83ce3-c3a8-4523-accc-173904582ced", "male")}
CARTESIA_FOR_CONTRACT = {"alloy": "Katie", "ash": "Ronald", "ballad": "Keith", "coral": "Jacqueline",
                         "echo": "Jordan", "fable": "Keith", "nova": "Brooke", "onyx": "Ronald", "sage": "Jacqueline",
                         "shimmer": "Brooke", "verse": "Jordan"}
CARTESIA_LANGUAGES = ("en", "de", "es", "fr", "ja", "pt", "zh", "hi", "ko", "it", "nl", "pl", "ru", "sv", "tr",
                      "tl", "bg", "ro", "ar", "cs", "el", "fi", "hr", "ms", "sk", "da", "ta", "uk", "hu", "no",
                      "vi", "bn", "th", "he", "ka", "id", "te", "gu", "kn", "ml", "mr", "pa")  # sonic-3's
# ElevenLabs: premade voices every account has (name -> voice id, gender); eleven_flash_v2_5's languages.
ELEVENLABS_VOICES = {"Rachel": ("21m00Tcm4TlvDq8ikWAM", "female"), "Adam": ("pNInz6obpgDQGcFmaJgB", "male"),
                     "Antoni": ("ErXwobaYiN019PkySvjV", "male"), "Domi": ("AZnzlk1XvdvUeBnXmlld", "female"),
                     "Elli": ("MF3mGyEYCl7XYWbV9V6O", "female"), "Josh": ("TxGEqnHWrfWFTfGW9XjX", "male")}
ELEVENLABS_FOR_CONTRACT = {"alloy": "Rachel", "ash": "Adam", "ballad": "Antoni", "coral": "Elli", "echo": "Josh",
                           "fable": "Antoni", "nova": "Domi", "onyx": "Adam", "sage": "Rachel", "shimmer": "Elli",
                           "verse": "Josh"}
ELEVENLABS_LANGUAGES = ("en", "ja", "zh", "de", "hi", "fr", "ko", "pt", "it", "es", "id", "nl", "tr", "tl", "pl",
                        "sv", "bg", "ro", "ar", "cs", "el", "fi", "hr", "ms", "sk", "da", "ta", "uk", "ru", "hu",
                        "no", "vi")


@dataclass(frozen=True)
class Voice:
    name: str
    provider: str
    languages: tuple[str, ...]  # BCP-47 primary subtags; ("*",) speaks every language the model does
    gender: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "provider": self.provider, "languages": list(self.languages),
                "gender": self.gender}


def primary_language(tag: str | None) -> str | None:
    """The primary subtag of a BCP-47 tag, lower case (``he-IL`` -> ``he``); None for ``auto`` or nothing."""
    primary = (tag or "").split("-")[0].strip().lower()
    return primary if primary and primary != "auto" else None


def resolve_gemini(name: str) -> str:
    by_lower = {n.lower(): n for n in GEMINI_VOICES}
    return by_lower.get(name.lower()) or GEMINI_FOR_CONTRACT.get(name.lower(), "Puck")


def resolve_openai(name: str) -> str:
    return name.lower() if name.lower() in OPENAI_VOICES else "alloy"


def resolve_openai_tts(name: str, fallback: str = "alloy") -> str:
    return name.lower() if name.lower() in OPENAI_TTS_VOICES else fallback


def _resolve_id(name: str, voices: dict[str, tuple[str, str]], for_contract: dict[str, str], default: str) -> str:
    """A voice id from a catalogue name (any case), a contract name or a voice id; anything else: ``default``
    (a voice id)."""
    by_lower = {n.lower(): voice_id for n, (voice_id, _) in voices.items()}
    wanted = name.strip()
    if wanted.lower() in by_lower:
        return by_lower[wanted.lower()]
    if wanted.lower() in for_contract:
        return voices[for_contract[wanted.lower()]][0]
    if any(wanted == voice_id for voice_id, _ in voices.values()):
        return wanted
    return default


def resolve_cartesia(name: str, fallback: str | None = None) -> str:
    """Cartesia's voice id for ``name``; a name the catalogue does not know: ``fallback`` (else Katie)."""
    return _resolve_id(name, CARTESIA_VOICES, CARTESIA_FOR_CONTRACT, fallback or CARTESIA_VOICES["Katie"][0])


def resolve_elevenlabs(name: str, fallback: str | None = None) -> str:
    """ElevenLabs' voice id for ``name``; a name the catalogue does not know: ``fallback`` (else Rachel)."""
    return _resolve_id(name, ELEVENLABS_VOICES, ELEVENLABS_FOR_CONTRACT, fallback or ELEVENLABS_VOICES["Rachel"][0])
