"""The realtime brain with OpenAI Realtime, against our fake server speaking the GA protocol on loopback.

The callee is a ``PacedMedia`` channel that takes turns with the agent; the
fake model answers each turn from a script and "hears" a scripted line per
turn. What is checked is our side of the protocol: the session configuration,
audio resampled both ways, barge-in truncation to what was heard, tools,
transcripts as turns, latency, a dropped connection, refusals and the time limit.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from fake_openai_realtime import FakeOpenAIRealtime, Step
from paced_media import PacedMedia, Utterance, silence, voiced

from byourside_server.agent.offline import OfflineBrain
from byourside_server.agent.realtime import RealtimeCall
from byourside_server.agent.realtime.conversation import RealtimeBrain
from byourside_server.agent.realtime.replies import heard_share
from byourside_server.agent.realtime.openai import OpenAIRealtime
from byourside_server.domain import CallTask, FieldSpec, Turn
from byourside_server.voice.latency import LatencyLog

OBJECTIVE = "Ask whether they have a table for two tonight and how much the tasting menu costs."
GREETING = "Good evening, The Copper Pot, this is Sofia speaking. How can I help you?"
TABLE = "We have a table for two available tonight at seven."
PRICE = "The tasting menu is eighty-five dollars per person."
ASK_TABLE = "Hi, I'm an AI assistant calling for demo. Do you have a table for two tonight?"
ASK_PRICE = "Great. How much is the tasting menu?"
BYE = "Thank you so much, goodbye!"


def task(**changes) -> CallTask:
    base = dict(call_id="call_rt", to="+14155550123", from_number="+14155550100", objective=OBJECTIVE,
                context=None, fields=(FieldSpec("table_available", "boolean"),
                                      FieldSpec("tasting_menu_price", "number")),
                language="en-US", voice="alloy", account_name="demo", max_duration_seconds=600)
    return CallTask(**{**base, **changes})


def lines(*said: str):
    """The fake model hears these, one per turn, in order."""
    queue = list(said)

    async def hear(pcm: np.ndarray) -> str:
        return queue.pop(0) if queue else ""

    return hear


def end_call(outcome: str = "objective_met") -> dict:
    return {"outcome": outcome, "reason": "done"}


class Recorded:
    def __init__(self) -> None:
        self.turns: list[Turn] = []
        self.latency = LatencyLog()

    async def on_turns(self, turns) -> None:  # noqa: ANN001
        self.turns = list(turns)

    def call(self, hold_audio: np.ndarray | None = None) -> RealtimeCall:
        return RealtimeCall(self.on_turns, self.latency, hold_audio)


async def converse(fake: FakeOpenAIRealtime, media: PacedMedia, call_task: CallTask | None = None,
                   hold_audio: np.ndarray | None = None, **brain_options):
    await fake.start()
    recorded = Recorded()
    brain = RealtimeBrain(OpenAIRealtime("sk-test", url=fake.url), OfflineBrain(), retry_delay_seconds=0.01,
                          **brain_options)
    try:
        end = await asyncio.wait_for(brain.converse_media(call_task or task(), media, recorded.call(hold_audio)), 60)
        await media.hangup()
        return end, recorded, brain
    finally:
        await media.hangup()
        await fake.aclose()


async def test_a_whole_call_gives_turns_fields_latency_and_ends_with_the_models_end_call():
    fake = FakeOpenAIRealtime([Step(ASK_TABLE), Step(ASK_PRICE), Step(BYE, "end_call", end_call())],
                              hear=lines(GREETING, TABLE, PRICE))
    media = PacedMedia([Utterance(voiced(1500), delay_ms=300), Utterance(voiced(1200)), Utterance(voiced(1200))])
    end, recorded, brain = await converse(fake, media)

    assert (end.reason, end.answered_by, end.failed) == ("objective_met", "human", False)
    assert media.hung_up_by_us and not media.cleared_at_ms  # nobody talked over anybody
    assert [(t.speaker, t.text) for t in recorded.turns] == [
        ("contact", GREETING), ("agent", ASK_TABLE), ("contact", TABLE), ("agent", ASK_PRICE),
        ("contact", PRICE), ("agent", BYE)]
    assert all(a.start_ms <= b.start_ms for a, b in zip(recorded.turns, recorded.turns[1:]))
    # Every agent turn is the whole reply, as long as its audio: the fake speaks 55 ms per character.
    for turn in recorded.turns[1::2]:
        assert not turn.interrupted and abs((turn.end_ms - turn.start_ms) - 55 * len(turn.text)) <= 40, turn
    assert abs(media.agent_audio_ms() - 55 * len(ASK_TABLE + ASK_PRICE + BYE)) <= 120

    # Our session: GA shape, 24 kHz pcm both ways, the prompt, the three tools flat, the language to transcribe.
    session = fake.sessions[0]
    assert session["type"] == "realtime" and session["output_modalities"] == ["audio"]
    assert session["audio"]["output"]["voice"] == "alloy"
    assert session["audio"]["input"]["transcription"]["language"] == "en"
    assert OBJECTIVE in session["instructions"]
    assert sorted(t["name"] for t in session["tools"]) == ["end_call", "press_digits", "wait_silently"]
    assert [o["call_id"] for o in fake.tool_outputs] and not fake.errors_sent
    # The callee's 3.9 s of speech reached the model upsampled to 24 kHz (all of it, plus the silences between).
    assert fake.audio_in_ms >= media.elapsed_ms() - 200

    latency = recorded.latency.report()
    assert latency is not None and len(latency["turns"]) == 3, latency
    for turn in latency["turns"]:
        assert turn["endpointingMs"] >= 0 and turn["llmFirstTokenMs"] >= 0
        assert turn["totalMs"] >= turn["endpointingMs"] + turn["llmFirstTokenMs"] - 40, turn

    analysis = await brain.analyze(task(), recorded.turns, end)
    assert analysis.extracted == {"table_available": True, "tasting_menu_price": 85}
    assert analysis.objective_met is True and analysis.evidence["tasting_menu_price"]["turnIndex"] == 4


async def test_speech_over_a_reply_clears_it_and_truncates_the_model_to_what_was_heard():
    long_reply = "Hi, I'm an AI assistant calling for demo about a reservation for two people tonight, if you have one."
    fake = FakeOpenAIRealtime([Step(long_reply), Step("Of course, go ahead."), Step(BYE, "end_call", end_call())],
                              hear=lines(GREETING, "Sorry, one moment, who is this?", "Okay, thanks, bye."))
    media = PacedMedia([Utterance(voiced(1000), delay_ms=300), Utterance(voiced(900), after="over", delay_ms=1500),
                        Utterance(voiced(800))])
    end, recorded, _ = await converse(fake, media)

    assert end.reason == "objective_met"
    assert media.cleared_at_ms, "the reply was never stopped"
    [truncate] = fake.truncations
    first = recorded.turns[1]
    assert first.speaker == "agent" and first.interrupted
    heard = first.end_ms - first.start_ms
    assert truncate["audio_end_ms"] == heard and 1500 <= heard < 55 * len(long_reply) - 1000
    assert long_reply.startswith(first.text) and 0 < len(first.text) < len(long_reply)
    assert not fake.errors_sent  # the truncation was within the item's audio
    assert [t.speaker for t in recorded.turns] == ["contact", "agent", "contact", "agent", "contact", "agent"]


async def test_press_digits_goes_out_as_dtmf_and_wait_silently_keeps_the_model_quiet():
    fake = FakeOpenAIRealtime([Step("", "press_digits", {"digits": "2"}), Step("Hello, I'm calling about a table."),
                               Step("", "wait_silently", {"seconds": 5}),
                               Step(BYE, "end_call", end_call("objective_unreachable"))],
                              hear=lines("For reservations press two.", "Please hold.", "Hello?"))
    media = PacedMedia([Utterance(voiced(800), delay_ms=300), Utterance(voiced(600)),
                        Utterance(voiced(600), after="pause", delay_ms=2000)])
    end, recorded, _ = await converse(fake, media)
    assert media.digits_sent == ["2"]
    assert len(fake.tool_outputs) == 3 and not fake.errors_sent
    # press_digits lets the model go on (response.create); wait_silently and end_call do not.
    assert len(fake.response_requests) == 1
    assert end.reason == "objective_unreachable"
    assert [(t.speaker, t.text) for t in recorded.turns] == [
        ("contact", "For reservations press two."), ("agent", "Hello, I'm calling about a table."),
        ("contact", "Please hold."), ("contact", "Hello?"), ("agent", BYE)]


async def test_a_dropped_connection_plays_the_holding_line_and_resumes_with_the_conversation_so_far():
    gate = asyncio.Event()
    fake = FakeOpenAIRealtime([Step(ASK_TABLE), Step(ASK_PRICE), Step(BYE, "end_call", end_call())],
                              hear=lines(GREETING, TABLE, PRICE), drop_after_responses=1, reconnect_gate=gate)
    # The callee waits a while after the apology before answering.
    media = PacedMedia([Utterance(voiced(1200), delay_ms=300), Utterance(voiced(1000), delay_ms=2000),
                        Utterance(voiced(1000))])
    hold_frame = np.full(160, 2500, dtype=np.int16)
    hold = np.tile(hold_frame, 50)  # one second of a recognisable level

    async def reconnect_once_holding() -> None:  # the provider comes back once the callee hears the holding line
        while not any(np.array_equal(frame, hold_frame) for frame in media.outbound[-5:]):
            await asyncio.sleep(0.01)
        gate.set()

    releasing = asyncio.ensure_future(reconnect_once_holding())
    end, recorded, _ = await converse(fake, media, hold_audio=hold)
    releasing.cancel()

    assert fake.connections == 2 and end.reason == "objective_met"
    resumed = fake.sessions[1]["instructions"]
    assert "THE CONVERSATION SO FAR" in resumed and ASK_TABLE in resumed and GREETING in resumed
    # The reply received before the drop played in full; the holding line followed while we reconnected.
    agent = [t for t in recorded.turns if t.speaker == "agent"]
    assert agent[0].text == ASK_TABLE and not agent[0].interrupted
    held = [i for i, frame in enumerate(media.outbound) if np.array_equal(frame, hold_frame)]
    assert held and held[0] * 20 >= agent[0].end_ms
    assert "dropped" in fake.response_requests[0]["response"]["instructions"]
    assert agent[1].text == "Sorry about that, where were we?"


async def test_a_drop_noticed_before_we_fall_quiet_resumes_without_a_holding_line():
    fake = FakeOpenAIRealtime([Step(ASK_TABLE), Step(ASK_PRICE), Step(BYE, "end_call", end_call())],
                              hear=lines(GREETING, TABLE, PRICE), drop_after_responses=1)
    media = PacedMedia([Utterance(voiced(1200), delay_ms=300), Utterance(voiced(1000)), Utterance(voiced(1000))])
    end, recorded, _ = await converse(fake, media, hold_audio=np.full(4000, 2500, dtype=np.int16))
    assert fake.connections == 2 and end.reason == "objective_met"
    assert not fake.response_requests  # nothing was lost: the model waits for the callee's next turn
    assert [t.text for t in recorded.turns if t.speaker == "agent"] == [ASK_TABLE, ASK_PRICE, BYE]


@pytest.mark.parametrize(("status", "connects"), [(401, 1), (429, 3)])
async def test_a_refused_connection_fails_the_call_after_retrying_only_what_may_succeed(status, connects):
    fake = FakeOpenAIRealtime([Step(ASK_TABLE)], reject_status=status)
    attempts = []
    original = fake._check

    async def counting(connection, request):  # noqa: ANN001, ANN202
        attempts.append(request.path)
        return await original(connection, request)

    fake._check = counting
    media = PacedMedia([Utterance(voiced(500), delay_ms=300)])
    end, recorded, _ = await converse(fake, media, retries=2)
    assert end.failed and end.reason == "error:realtime_unavailable"
    assert len(attempts) == connects and recorded.turns == []


async def test_the_time_limit_has_the_model_say_goodbye_and_ends_the_call():
    fake = FakeOpenAIRealtime([Step(ASK_TABLE)], hear=lines(GREETING))
    media = PacedMedia([Utterance(voiced(800), delay_ms=300)])
    end, recorded, _ = await converse(fake, media, task(max_duration_seconds=8))
    assert end.reason == "max_duration" and media.hung_up_by_us
    assert "time limit" in fake.response_requests[-1]["response"]["instructions"]
    assert recorded.turns[-1].text == "Sorry, I have to end the call now. Goodbye."
    assert recorded.turns[-1].end_ms > 8000


async def test_cancelling_the_call_closes_the_session():
    fake = FakeOpenAIRealtime([Step(ASK_TABLE)], hear=lines(GREETING))
    await fake.start()
    media = PacedMedia([Utterance(voiced(800), delay_ms=300), Utterance(silence(60_000))])
    brain = RealtimeBrain(OpenAIRealtime("sk-test", url=fake.url), OfflineBrain())
    running = asyncio.ensure_future(brain.converse_media(task(), media, Recorded().call()))
    for _ in range(400):
        if fake.sessions:
            break
        await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    for _ in range(200):
        if not fake._server.connections:
            break
        await asyncio.sleep(0.01)
    assert not fake._server.connections  # our side closed the socket
    await media.hangup()
    await fake.aclose()


def test_the_heard_share_of_a_reply_follows_the_played_position():
    assert heard_share("one two three four", 900, 1800) == "one two"
    assert heard_share("one two three four", 1800, 1800) == "one two three four"
    assert heard_share("one two", 0, 1800) == ""
