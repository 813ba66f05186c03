"""The realtime brain with Gemini Live, against our fake server speaking the v1beta BidiGenerateContent protocol.

As for OpenAI (test_openai_realtime.py): a callee that takes turns with the
agent, a scripted model; checked are our setup message, audio resampled both
ways (16 kHz in, 24 kHz out), tool calls and responses, barge-in (Gemini has
no truncate: our side stops playing and keeps only what was heard), the turns,
a goAway/drop and a refused key.
"""

from __future__ import annotations

import asyncio

from fake_gemini_live import FakeGeminiLive
from fake_openai_realtime import Step
from paced_media import PacedMedia, Utterance, voiced
from test_openai_realtime import (
    ASK_PRICE,
    ASK_TABLE,
    BYE,
    GREETING,
    PRICE,
    TABLE,
    Recorded,
    end_call,
    lines,
    task,
)

from byourside_server.agent.offline import OfflineBrain
from byourside_server.agent.realtime.conversation import RealtimeBrain
from byourside_server.agent.realtime.gemini import GeminiLive


async def converse(fake: FakeGeminiLive, media: PacedMedia, key: str = "gm-test", **call_task):
    await fake.start()
    recorded = Recorded()
    brain = RealtimeBrain(GeminiLive(key, url=fake.url), OfflineBrain(), retry_delay_seconds=0.01)
    try:
        end = await asyncio.wait_for(brain.converse_media(task(**call_task), media, recorded.call()), 60)
        return end, recorded, brain
    finally:
        await media.hangup()
        await fake.aclose()


async def test_a_whole_call_over_gemini_live_gives_turns_fields_and_latency():
    fake = FakeGeminiLive([Step(ASK_TABLE), Step(ASK_PRICE), Step(BYE, "end_call", end_call())],
                          hear=lines(GREETING, TABLE, PRICE))
    media = PacedMedia([Utterance(voiced(1500), delay_ms=300), Utterance(voiced(1200)), Utterance(voiced(1200))])
    end, recorded, brain = await converse(fake, media, language="fr-FR", voice="shimmer")

    assert (end.reason, end.failed) == ("objective_met", False) and media.hung_up_by_us
    assert [(t.speaker, t.text) for t in recorded.turns] == [
        ("contact", GREETING), ("agent", ASK_TABLE), ("contact", TABLE), ("agent", ASK_PRICE),
        ("contact", PRICE), ("agent", BYE)]
    for turn in recorded.turns[1::2]:  # whole replies, as long as their audio (55 ms per character)
        assert not turn.interrupted and abs((turn.end_ms - turn.start_ms) - 55 * len(turn.text)) <= 40, turn
    setup = fake.setups[0]
    speech = setup["generationConfig"]["speechConfig"]
    assert speech == {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}, "languageCode": "fr-FR"}
    assert "Speak fr-FR" in setup["systemInstruction"]["parts"][0]["text"]
    names = [f["name"] for f in setup["tools"][0]["functionDeclarations"]]
    assert sorted(names) == ["end_call", "press_digits", "wait_silently"]
    assert [r["name"] for r in fake.tool_responses] == ["end_call"]
    assert fake.audio_in_ms >= media.elapsed_ms() - 200  # all of the callee's audio, at 16 kHz
    assert len(recorded.latency.report()["turns"]) == 3
    analysis = await brain.analyze(task(), recorded.turns, end)
    assert analysis.extracted == {"table_available": True, "tasting_menu_price": 85}


async def test_speech_over_a_gemini_reply_stops_it_and_keeps_what_was_heard():
    long_reply = "Hi, I'm an AI assistant calling for demo about a reservation for two people tonight, if you have one."
    fake = FakeGeminiLive([Step(long_reply), Step("Of course, go ahead."), Step(BYE, "end_call", end_call())],
                          hear=lines(GREETING, "Sorry, one moment, who is this?", "Okay, thanks, bye."))
    media = PacedMedia([Utterance(voiced(1000), delay_ms=300), Utterance(voiced(900), after="over", delay_ms=1500),
                        Utterance(voiced(800))])
    end, recorded, _ = await converse(fake, media)
    assert end.reason == "objective_met" and media.cleared_at_ms
    first = recorded.turns[1]
    assert first.speaker == "agent" and first.interrupted
    assert long_reply.startswith(first.text) and 0 < len(first.text) < len(long_reply)
    assert [t.speaker for t in recorded.turns] == ["contact", "agent", "contact", "agent", "contact", "agent"]


async def test_go_away_reconnects_with_the_conversation_so_far():
    fake = FakeGeminiLive([Step(ASK_TABLE), Step(ASK_PRICE), Step(BYE, "end_call", end_call())],
                          hear=lines(GREETING, TABLE, PRICE), drop_after_turns=1)
    media = PacedMedia([Utterance(voiced(1200), delay_ms=300), Utterance(voiced(1000)), Utterance(voiced(1000))])
    end, recorded, _ = await converse(fake, media)
    assert fake.connections == 2 and end.reason == "objective_met"
    resumed = fake.setups[1]["systemInstruction"]["parts"][0]["text"]
    assert "THE CONVERSATION SO FAR" in resumed and ASK_TABLE in resumed
    assert [t.text for t in recorded.turns if t.speaker == "agent"] == [ASK_TABLE, ASK_PRICE, BYE]


async def test_a_wrong_key_fails_the_call_without_retrying():
    fake = FakeGeminiLive([Step(ASK_TABLE)])
    media = PacedMedia([Utterance(voiced(500), delay_ms=300)])
    end, recorded, _ = await converse(fake, media, key="wrong")
    assert end.failed and end.reason == "error:realtime_unavailable"
    assert fake.connections == 1 and fake.closed_codes == [1007] and recorded.turns == []
