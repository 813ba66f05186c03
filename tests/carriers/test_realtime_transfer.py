"""The realtime brain's ``transfer_call`` tool, through the real runtime and store, with the fake OpenAI
Realtime server and a paced media channel whose carrier takes transfers (no speech models); and its brief,
which the model writes as words only, rendered with the deployment's local TTS so that the real Telnyx
provider gives the fake Telnyx an ``audio_url`` of our voice (or, without a local TTS, the words alone)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "providers"))

from fake_openai_realtime import FakeOpenAIRealtime, Step
from paced_media import PacedMedia, Utterance, voiced
from support import conduct_call, new_account, open_services
from test_openai_realtime import lines
from test_telnyx_provider import request, telnyx  # noqa: F401 - fixtures

from byourside_server.agent.offline import OfflineBrain
from byourside_server.agent.realtime.conversation import RealtimeBrain
from byourside_server.agent.realtime.openai import OpenAIRealtime
from byourside_server.agent.transfer import TRANSFER_FAILED_NOTE
from byourside_server.telephony.base import (
    DialOutcome,
    DialRequest,
    DialResult,
    Telephony,
    TransferFailed,
)
from byourside_server.telephony.briefs import wav_bytes
from byourside_server.telephony.media import SAMPLE_RATE
from byourside_server.voice.factory import VoiceConfig
from byourside_server.voice.realtime_line import (
    RealtimeTelephony,
    local_speech_renderer,
)

GREETING = "Harbor Insurance, Robin speaking."
WANTS_PERSON = "Sorry, I'd rather talk to a real person."
HELLO = "Hi, I'm an AI assistant calling for Harbor Customers about your policy renewal."
CONNECTING = "Of course, I'll connect you now."
BRIEF = "Robin wants a person about the policy renewal."
SORRY = "I'm sorry, nobody is free right now. Goodbye!"


class TransferringMedia(PacedMedia):
    """A paced callee on a carrier that takes transfers: the numbers in ``refuse`` do not answer."""

    def __init__(self, refuse: set[str]) -> None:
        super().__init__([Utterance(voiced(1500), delay_ms=300), Utterance(voiced(1200))])
        self.refuse = refuse
        self.transfers: list[tuple[str, str | None]] = []

    async def transfer(self, to, brief=None, brief_audio=None) -> None:
        if to in self.refuse:
            raise TransferFailed("busy")
        self.transfers.append((to, brief))
        self._end(by_far_end=False)


class Carrier(Telephony):
    name = "paced"

    def __init__(self, refuse: set[str]) -> None:
        self.refuse = refuse
        self.media: TransferringMedia | None = None

    async def dial(self, request: DialRequest) -> DialOutcome:
        self.media = TransferringMedia(self.refuse)
        return DialOutcome(DialResult.ANSWERED, media=self.media)


async def conduct(tmp_path: Path, steps: list[Step], refuse: set[str], body: dict):
    fake = await FakeOpenAIRealtime(steps, hear=lines(GREETING, WANTS_PERSON)).start()
    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path,
                                   poll_seconds=0.05, heartbeat_seconds=0.2)
    carrier = Carrier(refuse)
    telephony = RealtimeTelephony(carrier, tmp_path / "recordings")
    try:
        account, _ = await new_account(services, name="Harbor Customers")
        call = await conduct_call(services, account, telephony, RealtimeBrain(OpenAIRealtime("sk-test", url=fake.url),
                                                                              OfflineBrain()), body)
    finally:
        await telephony.aclose()
        await services.aclose()
        await fake.aclose()
    return call, carrier.media, fake


async def test_the_realtime_brain_transfers_warm_with_its_own_brief(tmp_path: Path):
    call, media, fake = await conduct(tmp_path, [Step(HELLO), Step(CONNECTING, "transfer_call", {"brief": BRIEF})],
                                      set(), {"to": "+14155550134", "objective": "Ask when the renewal is due.",
                                              "transferTo": ["+14155550100"], "transferMode": "warm"})
    assert (call.status.value, call.end_reason) == ("completed", "transferred")
    assert media.transfers == [("+14155550100", BRIEF)]
    assert [t.text for t in call.turns if t.speaker == "agent"][-1] == CONNECTING
    tools = {t["name"] for t in fake.sessions[0]["tools"]}
    assert "transfer_call" in tools and "+14155550100" not in str(fake.sessions[0])


async def test_a_failed_transfer_is_told_to_the_model(tmp_path: Path):
    call, media, fake = await conduct(tmp_path, [
        Step(HELLO), Step(CONNECTING, "transfer_call", {"brief": BRIEF}),
        Step(SORRY, "end_call", {"outcome": "objective_unreachable", "reason": "nobody free"})],
        {"+14155550100"}, {"to": "+14155550134", "objective": "Ask when the renewal is due.",
                            "transferTo": "+14155550100"})
    assert call.end_reason == "objective_unreachable" and media.transfers == []
    assert TRANSFER_FAILED_NOTE in str(fake.tool_outputs)


# A realtime brain's brief (words only) rendered in our voice for Telnyx's audio_url, over the fake Telnyx
RECEPTIONIST, BUSY, SILENT = "+14155550100", "+14155550161", "+14155550133"


class CountedRenderer:
    """The deployment's local speech renderer, counting and keeping what it rendered."""

    def __init__(self, config: VoiceConfig) -> None:
        self.render = local_speech_renderer(config)
        self.rendered: dict[str, list[np.ndarray]] = {}

    async def __call__(self, text: str) -> np.ndarray:
        audio = await self.render(text)
        self.rendered.setdefault(text, []).append(audio)
        return audio


async def test_a_realtime_brief_reaches_telnyx_in_the_local_voice(telnyx):  # noqa: F811
    fake, provider = telnyx
    renderer = CountedRenderer(VoiceConfig(tts_engine="auto", tts_voice="packaged:joe"))
    telephony = RealtimeTelephony(provider, None, renderer)
    outcome = await telephony.dial(request(SILENT))
    assert outcome.result is DialResult.ANSWERED
    channel = outcome.media  # what the realtime brain's transfer_call reaches: media.transfer(to, brief)
    with pytest.raises(TransferFailed):
        await channel.transfer(BUSY, BRIEF)
    await channel.transfer(RECEPTIONIST, BRIEF)
    (call,) = fake.calls.values()
    busy, taken = call.transfers
    await asyncio.wait_for(taken.done.wait(), 10)
    assert busy.status == "busy" and busy.whisper_audio is None  # nobody answered: nothing was fetched
    assert taken.status == "connected" and taken.whisper_url.startswith(provider.base + "/brief/")
    (audio,) = renderer.rendered[BRIEF]  # rendered once, for both numbers
    assert len(audio) > SAMPLE_RATE  # over a second of speech
    assert taken.whisper_audio == wav_bytes(audio)  # Telnyx played the person our voice saying the brief
    await outcome.line.hangup()
    await telephony.aclose()


async def test_without_a_local_voice_telnyx_gets_the_brief_in_words_only(telnyx, tmp_path: Path):  # noqa: F811
    fake, provider = telnyx
    no_voice = VoiceConfig(tts_engine="piper", tts_voice=str(tmp_path / "missing.onnx"))
    telephony = RealtimeTelephony(provider, None, local_speech_renderer(no_voice))
    outcome = await telephony.dial(request(SILENT))
    await outcome.media.transfer(RECEPTIONIST, BRIEF)
    (call,) = fake.calls.values()
    (transfer,) = call.transfers
    await asyncio.wait_for(transfer.done.wait(), 10)
    assert transfer.status == "connected"
    assert transfer.whisper_url is None and transfer.whisper_audio is None  # no audio_url: as before
    await outcome.line.hangup()
    await telephony.aclose()
