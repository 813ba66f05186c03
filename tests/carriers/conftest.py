"""Fixtures for the carrier tests: the fake carriers live beside them; the real server process and the
SIP tests' helpers are imported from tests/e2e and tests/sip."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "e2e"))  # e2e_server: the real server process


@pytest.fixture(scope="session")
def voice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the speech models are assembled once (``<dir>/models``); a server process is pointed at it."""
    return tmp_path_factory.mktemp("voice")


@pytest.fixture(scope="session")
def voice_factory(voice_dir: Path):
    """faster-whisper (packaged Whisper base) + Piper (packaged joe voice) + webrtcvad, loaded once: the fake
    carrier's callee speaks and listens with them."""
    from byourside_server.voice.pipeline import VoiceConfig, local_voice

    factory = local_voice(VoiceConfig(), voice_dir)
    asyncio.run(factory.load())
    return factory
