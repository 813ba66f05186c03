"""Fixtures for the SIP tests: a sipp far end per test and the local voice models once per session.

Without sipp (``make sipp`` installs the Debian package sip-tester) these tests
skip locally and fail under CI=true.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))  # e2e_server: the real server process
from sipp_uas import SIPP, Sipp, start_sipp
from support import IN_CI


@pytest.fixture
def sipp(tmp_path: Path):
    if SIPP is None:
        message = "sipp is not installed: run `make sipp` (Debian package sip-tester)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    started: list[Sipp] = []

    def start(scenario: str, echo: bool = True, transport: str = "udp") -> Sipp:
        far_end = start_sipp(scenario, tmp_path, echo=echo, transport=transport)
        started.append(far_end)
        return far_end

    yield start
    for far_end in started:
        far_end.stop()


@pytest.fixture(scope="session")
def voice_factory(tmp_path_factory: pytest.TempPathFactory):
    """faster-whisper (packaged Whisper base) + Piper (packaged joe voice) + webrtcvad, loaded once."""
    from byourside_server.voice.pipeline import VoiceConfig, local_voice

    factory = local_voice(VoiceConfig(), tmp_path_factory.mktemp("voice"))
    asyncio.run(factory.load())
    return factory
