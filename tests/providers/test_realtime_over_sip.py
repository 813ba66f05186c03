"""A whole call conducted by a realtime model, through the real runtime, over SIP/RTP to the phone simulator.

Our worker dials the SIP simulator's restaurant (Sofia, who speaks through
Piper and hears through faster-whisper); the call is conducted by the
realtime brain against the fake OpenAI Realtime server, which hears Sofia's
audio through faster-whisper and speaks its scripted lines through Piper. The
call ends with the status, turns, typed fields, latency and recording of a
real audio call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_gemini_live import FakeGeminiLive
from fake_openai_realtime import FakeOpenAIRealtime, Step
from support import conduct_call, new_account, open_services

from byourside_server.agent.offline import OfflineBrain
from byourside_server.agent.realtime.conversation import RealtimeBrain
from byourside_server.agent.realtime.gemini import GeminiLive
from byourside_server.agent.realtime.openai import OpenAIRealtime
from byourside_server.telephony.simulator.over_sip import SipSimulator
from byourside_server.telephony.simulator.scenarios import load_scenarios
from byourside_server.telephony.sip.config import SipConfig
from byourside_server.telephony.sip.provider import SipTelephony
from byourside_server.voice.audio import resample
from byourside_server.voice.realtime_line import RealtimeTelephony
from byourside_server.voice.recorder import read_stereo

ASK_TABLE = "Hi, I'm an AI assistant calling on behalf of demo. Do you have a table for two tonight?"
ASK_PRICE = "Great. How much is the tasting menu per person?"
BYE = "Thank you so much, that's all I needed. Goodbye!"


def fake_with_local_models(provider: str, voice, steps: list[Step]):
    """The provider's fake, hearing through faster-whisper and speaking through Piper; and our model for it."""
    rate = 24000 if provider == "openai" else 16000

    async def hear(pcm: np.ndarray) -> str:
        stt, _ = await voice.load()
        return await stt.transcribe(pcm, rate)

    async def speak(text: str) -> np.ndarray:
        _, tts = await voice.load()
        return resample(await tts.synthesize(text), 8000, 24000)

    # A longer silence closes a turn than the default: Piper pauses between Sofia's sentences.
    if provider == "openai":
        fake = FakeOpenAIRealtime(steps, hear=hear, speak=speak)
        return fake, lambda: OpenAIRealtime("sk-test", url=fake.url, vad_silence_ms=900)
    fake = FakeGeminiLive(steps, hear=hear, speak=speak, silence_ms=900)
    return fake, lambda: GeminiLive("gm-test", url=fake.url)


@pytest.mark.voice
@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_a_realtime_call_over_sip_completes_with_turns_fields_latency_and_recording(tmp_path: Path, voice_factory,
                                                                                          provider):
    fake, model = fake_with_local_models(provider, voice_factory, [
        Step(ASK_TABLE), Step(ASK_PRICE, when="table"),
        Step(BYE, "end_call", {"outcome": "objective_met", "reason": "both answers"}, when="person"),
    ])
    await fake.start()
    # Sofia waits out the fake model however slowly its Whisper and Piper run on a loaded machine.
    simulator = await SipSimulator(load_scenarios(), voice_factory, host="127.0.0.1", port=0, patience=30).start()
    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path,
                                   poll_seconds=0.05, heartbeat_seconds=0.2)
    telephony = RealtimeTelephony(SipTelephony(SipConfig(trunk_uri=simulator.uri, bind_host="127.0.0.1")),
                                  tmp_path / "recordings")
    # On a loaded machine Sofia's first words may take a while to render: the model does not speak first.
    brain = RealtimeBrain(model(), OfflineBrain(), first_words_after_seconds=None)
    try:
        account, _ = await new_account(services)
        call = await conduct_call(services, account, telephony, brain, {
            "to": "+14155550123",
            "objective": "Ask whether they have a table for two tonight and how much the tasting menu costs.",
            "fields": [{"name": "table_available", "type": "boolean"},
                       {"name": "tasting_menu_price", "type": "number"}]}, timeout=900)
        await simulator.finish_calls(timeout=60)
    finally:
        await telephony.aclose()
        await services.aclose()
        await simulator.aclose()
        await fake.aclose()

    assert call.status.value == "completed", (call.status, call.end_reason, call.turns, fake.heard)
    assert call.end_reason == "objective_met", (call.turns, fake.heard)
    agent = [t.text for t in call.turns if t.speaker == "agent"]
    assert agent == [ASK_TABLE, ASK_PRICE, BYE], call.turns
    contact = " ".join(t.text.lower() for t in call.turns if t.speaker == "contact")
    assert "copper pot" in contact, call.turns  # Sofia's greeting, as the model's transcription heard it
    assert call.extracted == {"table_available": True, "tasting_menu_price": 85}, (call.extracted, call.turns)
    assert call.evidence and set(call.evidence) == {"table_available", "tasting_menu_price"}
    heard_by_sofia = " ".join(simulator.callees[0].heard).lower()
    assert "table" in heard_by_sofia and "tasting menu" in heard_by_sofia, simulator.callees[0].heard
    if provider == "openai":  # the session as configured: the call's voice, no protocol errors
        assert fake.sessions[0]["audio"]["output"]["voice"] == "alloy" and not fake.errors_sent
    else:
        assert fake.setups[0]["generationConfig"]["speechConfig"]["voiceConfig"] == {
            "prebuiltVoiceConfig": {"voiceName": "Puck"}} and not fake.closed_codes
    callee, ours = read_stereo(Path(call.recording_path))
    assert callee.any() and ours.any()
    turns = call.latency["turns"]
    assert len(turns) >= 2, call.latency
    for turn in turns:
        assert turn["totalMs"] >= turn["endpointingMs"] >= 0 and turn["llmFirstTokenMs"] >= 0, turn
