"""The runtime conducting a call with the realtime brain: worker, session, store, without speech models.

A carrier of ours answers with a ``PacedMedia`` channel; ``RealtimeTelephony``
composes it for the realtime brain, which talks to the fake OpenAI Realtime
server. The stored call has the turns, typed fields, latency and recording.
"""

from __future__ import annotations

from pathlib import Path

from fake_openai_realtime import FakeOpenAIRealtime, Step
from paced_media import PacedMedia, Utterance, voiced
from support import conduct_call, new_account, open_services
from test_openai_realtime import ASK_PRICE, ASK_TABLE, BYE, GREETING, OBJECTIVE, PRICE, TABLE, end_call, lines

from byourside_server.agent.offline import OfflineBrain
from byourside_server.agent.realtime.conversation import RealtimeBrain
from byourside_server.agent.realtime.openai import OpenAIRealtime
from byourside_server.telephony.base import DialOutcome, DialRequest, DialResult, Telephony
from byourside_server.voice.realtime_line import RealtimeTelephony
from byourside_server.voice.recorder import read_stereo


class PacedCarrier(Telephony):
    """Answers every call at once with a callee who greets, then answers two questions."""

    name = "paced"

    def __init__(self) -> None:
        self.requests: list[DialRequest] = []

    async def dial(self, request: DialRequest) -> DialOutcome:
        self.requests.append(request)
        media = PacedMedia([Utterance(voiced(1500), delay_ms=300), Utterance(voiced(1200)), Utterance(voiced(1200))])
        return DialOutcome(DialResult.ANSWERED, media=media)


async def test_the_runtime_conducts_a_realtime_call_and_stores_its_outcome(tmp_path: Path):
    fake = await FakeOpenAIRealtime([Step(ASK_TABLE), Step(ASK_PRICE), Step(BYE, "end_call", end_call())],
                                    hear=lines(GREETING, TABLE, PRICE)).start()
    services = await open_services(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path,
                                   poll_seconds=0.05, heartbeat_seconds=0.2)
    carrier = PacedCarrier()
    telephony = RealtimeTelephony(carrier, tmp_path / "recordings")
    brain = RealtimeBrain(OpenAIRealtime("sk-test", url=fake.url), OfflineBrain())
    try:
        account, _ = await new_account(services)
        call = await conduct_call(services, account, telephony, brain, {
            "to": "+14155550123", "objective": OBJECTIVE, "voice": "shimmer", "language": "en-GB",
            "fields": [{"name": "table_available", "type": "boolean"},
                       {"name": "tasting_menu_price", "type": "number"}]})
    finally:
        await telephony.aclose()
        await services.aclose()
        await fake.aclose()

    assert (call.status.value, call.end_reason) == ("completed", "objective_met")
    assert [(t.speaker, t.text) for t in call.turns] == [
        ("contact", GREETING), ("agent", ASK_TABLE), ("contact", TABLE), ("agent", ASK_PRICE),
        ("contact", PRICE), ("agent", BYE)]
    assert call.extracted == {"table_available": True, "tasting_menu_price": 85}
    assert call.objective_met is True and call.summary
    assert len(call.latency["turns"]) == 3
    session = fake.sessions[0]  # the request's voice and language reached the model
    assert session["audio"]["output"]["voice"] == "shimmer"
    assert session["audio"]["input"]["transcription"]["language"] == "en"
    assert "Speak en-GB" in session["instructions"]
    callee, ours = read_stereo(Path(call.recording_path))
    assert callee.any() and ours.any()
