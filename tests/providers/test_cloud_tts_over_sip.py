"""A whole call over the SIP simulator with each cloud speaker (BYS_TTS=cartesia, elevenlabs, openai).

The runtime's offline agent calls the simulator's restaurant (Sofia hears with faster-whisper and answers
with Piper); the agent listens with faster-whisper and speaks through the cloud TTS, here our fake of that
provider's protocol, which renders the text it is sent with Piper so that Sofia can understand it. The
call completes with its typed field only if every word of ours went through the provider's protocol and
reached Sofia as speech over RTP.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_cartesia import FakeCartesia
from fake_elevenlabs import FakeElevenLabs
from fake_openai_tts import FakeOpenAITTS
from support import conduct_call, new_account, open_services

from byourside_server.agent.offline import OfflineBrain
from byourside_server.telephony.simulator.over_sip import SipSimulator
from byourside_server.telephony.simulator.scenarios import load_scenarios
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.factory import VoiceConfig, VoiceFactory
from byourside_server.voice.telephony import VoicedTelephony

FAKES = {"cartesia": (FakeCartesia, "car-test"), "elevenlabs": (FakeElevenLabs, "xi-test"),
         "openai": (FakeOpenAITTS, "sk-test")}


def texts_sent(provider: str, fake) -> list[str]:  # noqa: ANN001
    """What our speaker asked the fake to say, as the fake received it."""
    if provider == "cartesia":
        return [m["transcript"] for s in fake.sockets for m in s["messages"] if m.get("transcript")]
    if provider == "elevenlabs":
        return [text for request in fake.requests for text in request.get("texts", []) if text.strip()]
    return [body["input"] for body in fake.requests]


@pytest.mark.voice
@pytest.mark.parametrize("provider", sorted(FAKES))
async def test_a_call_over_sip_speaks_through_the_cloud_tts(provider: str, tmp_path: Path, voice_factory,
                                                           monkeypatch: pytest.MonkeyPatch):
    whisper, piper = await voice_factory.load()

    async def speak(text: str) -> np.ndarray:
        return await piper.synthesize(text)

    fake_class, key = FAKES[provider]
    fake = await fake_class(speak=speak).start()
    for name, value in {"BYS_TTS": provider, f"BYS_{provider.upper()}_API_KEY": key,
                        ("BYS_OPENAI_TTS_URL" if provider == "openai" else f"BYS_{provider.upper()}_URL"): fake.url,
                        }.items():
        monkeypatch.setenv(name, value)
    from byourside_server.voice.factory import cloud_tts

    speaker = cloud_tts(VoiceConfig())
    # The agent's ears are the shared Whisper; its voice is the cloud speaker (what BYS_TTS builds).
    voice = VoiceFactory(lambda: whisper, lambda: speaker, voice_factory.endpointer,
                         barge_in_ms=voice_factory.barge_in_ms, barge_in_pause_ms=voice_factory.barge_in_pause_ms,
                         stt_early_ms=voice_factory.stt_early_ms)
    simulator = await SipSimulator(load_scenarios(), voice_factory, host="127.0.0.1", port=0, patience=30).start()
    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path,
                                   poll_seconds=0.05, heartbeat_seconds=0.2)
    telephony = VoicedTelephony(SipTelephony(SipConfig(trunk_uri=simulator.uri, bind_host="127.0.0.1")), voice)
    try:
        account, _ = await new_account(services)
        call = await conduct_call(services, account, telephony, OfflineBrain(), {
            "to": "+14155550123", "objective": "Ask whether they have a table for two tonight.",
            "fields": [{"name": "table_available", "type": "boolean"}]}, timeout=900)
        await simulator.finish_calls(timeout=60)
    finally:
        await telephony.aclose()
        await services.aclose()
        await simulator.aclose()
        await fake.aclose()

    sent = texts_sent(provider, fake)
    assert call.status.value == "completed", (call.status, call.end_reason, call.turns, sent)
    assert call.extracted == {"table_available": True}, (call.extracted, call.turns)
    agent_words = " ".join(t.text for t in call.turns if t.speaker == "agent")
    assert sent and "table" in " ".join(sent).lower() and "table" in agent_words.lower(), (sent, call.turns)
    heard_by_sofia = " ".join(simulator.callees[0].heard).lower()
    assert "table" in heard_by_sofia, simulator.callees[0].heard  # our words reached her as speech, over RTP
    turns = call.latency["turns"]  # per-turn latency on the call, the provider's first audio included
    assert turns, call.latency
    for turn in turns:
        assert turn["totalMs"] >= turn["endpointingMs"] >= 0 and turn["ttsFirstAudioMs"] >= 0, turn
