"""BYS_REALTIME through the provider registry, and the audio converters between 8 kHz and the models' rates."""

from __future__ import annotations

import numpy as np
import pytest

from byourside_server.agent.llm.brain import LLMBrain
from byourside_server.agent.offline import OfflineBrain
from byourside_server.agent.realtime.conversation import RealtimeBrain
from byourside_server.agent.realtime.gemini import GeminiLive
from byourside_server.agent.realtime.openai import OpenAIRealtime
from byourside_server.clock import SystemClock
from byourside_server.runtime.registry import ProviderError, build_brain, build_telephony
from byourside_server.settings import Settings
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.realtime_audio import Downsampler, Upsampler, b64_pcm16, pcm16_b64
from byourside_server.voice.realtime_line import RealtimeTelephony


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_openai_realtime_conducts_the_calls_and_the_configured_brain_analyses_them():
    brain = build_brain(settings(realtime="openai", openai_api_key="sk-x", openai_realtime_model="gpt-realtime-mini"))
    assert isinstance(brain, RealtimeBrain) and isinstance(brain.analyst, OfflineBrain)
    assert isinstance(brain.model, OpenAIRealtime) and brain.model.model == "gpt-realtime-mini"
    with_llm = build_brain(settings(realtime="gemini", gemini_api_key="g", llm_base_url="http://127.0.0.1:9/v1",
                                    llm_model="m", realtime_retries=5))
    assert isinstance(with_llm.model, GeminiLive) and isinstance(with_llm.analyst, LLMBrain)
    assert with_llm.retries == 5


@pytest.mark.parametrize(("values", "message"), [
    ({"realtime": "openai"}, "BYS_OPENAI_API_KEY"),
    ({"realtime": "gemini"}, "BYS_GEMINI_API_KEY"),
    ({"realtime": "vapi"}, "Known: off, gemini, openai"),
])
def test_a_realtime_model_without_what_it_needs_fails_at_start_up(values, message):
    with pytest.raises(ProviderError, match=message):
        build_brain(settings(**values))


def test_a_realtime_model_needs_an_audio_carrier():
    with pytest.raises(ProviderError, match="needs an audio carrier: set BYS_TELEPHONY=sip"):
        build_telephony(settings(realtime="openai", openai_api_key="sk-x"), SystemClock())


async def test_over_sip_the_realtime_model_gets_the_media_without_the_voice_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("BYS_SIP_TRUNK_URI", "sip:trunk.example.net:5080")
    telephony = build_telephony(settings(telephony="sip", realtime="openai", openai_api_key="sk-x",
                                         data_dir=tmp_path), SystemClock())
    try:
        assert isinstance(telephony, RealtimeTelephony) and isinstance(telephony.carrier, SipTelephony)
        assert telephony.recordings_dir == tmp_path / "recordings"
    finally:
        await telephony.aclose()


def tone(hz: float, rate: int, ms: int) -> np.ndarray:
    t = np.arange(rate * ms // 1000) / rate
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


@pytest.mark.parametrize("factor", [2, 3])
def test_frame_by_frame_conversion_is_continuous_and_round_trips(factor):
    speech = tone(440, 8000, 1000)
    up = Upsampler(factor)
    frames = [up(speech[i:i + 160]) for i in range(0, len(speech), 160)]
    upsampled = np.concatenate(frames)
    assert len(upsampled) == factor * len(speech)
    # No click at frame edges: the largest step between samples is that of a 440 Hz tone at the higher rate.
    assert np.abs(np.diff(upsampled.astype(np.int32))).max() <= 8000 * 2 * np.pi * 440 / (8000 * factor) * 1.6
    down = Downsampler(factor)
    chunk = 480 * factor // 3
    back = np.concatenate([down(upsampled[i:i + chunk]) for i in range(0, len(upsampled), chunk)])
    assert len(back) == len(speech)
    # The same tone comes back, a few samples late (the interpolation and the low-pass filter delay it).
    best = max(np.corrcoef(back[lag + 100:], speech[100:len(speech) - lag])[0, 1] for lag in range(20))
    assert best > 0.98  # at the best whole-sample lag (the true one falls between samples)
    assert 0.8 < np.abs(back[200:]).max() / np.abs(speech).max() < 1.05


def test_downsampling_removes_what_8_khz_cannot_carry():
    high = tone(6000, 24000, 500)  # above the 4 kHz Nyquist limit of the telephone
    assert np.abs(Downsampler(3)(high)[50:]).max() < 800  # folded back, it would be as loud as the tone


def test_pcm16_travels_as_little_endian_base64():
    pcm = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    assert pcm16_b64(pcm) == "AAABAP//\u002f38AgA=="
    assert np.array_equal(b64_pcm16(pcm16_b64(pcm)), pcm)
