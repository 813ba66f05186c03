"""The voice package's public surface: the ports and the factory that builds them from settings.

The ports live in voice/ports.py, the factory in voice/factory.py, and the
engine that turns a media channel into a Line in voice/engine.py.
"""

from byourside_server.voice.factory import (
    VoiceConfig,
    VoiceFactory,
    check_voice_installed,
    local_voice,
    make_endpointer,
    turn_detector,
)
from byourside_server.voice.ports import (
    SpeechChunk,
    SpeechToText,
    TextToSpeech,
    split_sentences,
)

__all__ = [
    "SpeechChunk", "SpeechToText", "TextToSpeech", "VoiceConfig", "VoiceFactory", "check_voice_installed",
    "local_voice", "make_endpointer", "split_sentences", "turn_detector",
]
