"""Fixtures for the provider tests: the local speech models once per session (for the calls over SIP)."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture(scope="session")
def voice_factory(tmp_path_factory: pytest.TempPathFactory):
    """faster-whisper (packaged Whisper base) + Piper (packaged joe voice) + webrtcvad, loaded once."""
    from byourside_server.voice.pipeline import VoiceConfig, local_voice

    factory = local_voice(VoiceConfig(), tmp_path_factory.mktemp("voice"))
    asyncio.run(factory.load())
    return factory
