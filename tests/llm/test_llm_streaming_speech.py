"""The LLM brain speaks a streamed reply from its first clause, and its history keeps only what was heard.

The fake OpenAI server streams the reply as server-sent events and holds the
rest of the stream after the first chunks until the line has received
something to say: the test passes only if speaking starts before the model's
reply is complete. A line that reports the reply cut short checks that the
model's history (the next request) carries only the heard words.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from byourside_server.agent.llm.brain import CUT_OFF, LLMBrain
from byourside_server.agent.llm.provider import ChatProvider, LLMConfig
from byourside_server.agent.llm.speakable import SpeakableStream
from byourside_server.agent.llm.brain import clean_utterance
from byourside_server.domain import CallTask
from byourside_server.runtime.recording_line import RecordingLine
from byourside_server.telephony.base import Spoken
from fake_openai import FakeOpenAI, Reply, tool
from fakes import FakeLine

REPLY = "Sure, we have a table for two at eight tonight. Shall I hold it for you?"


class StreamingLine(FakeLine):
    """A text line that, like an audio line, takes speech in pieces as they come."""

    def __init__(self, fake: FakeOpenAI, replies, heard_until: int | None = None) -> None:  # noqa: ANN001
        super().__init__(replies)
        self.fake = fake
        self.pieces: list[list[str]] = []
        self.heard_until = heard_until  # characters of the first reply heard before the callee cut in

    @property
    def streams_speech(self) -> bool:
        return True

    async def say_stream(self, pieces: AsyncIterator[str]) -> tuple[str, Spoken]:
        got: list[str] = []
        async for piece in pieces:
            got.append(piece)
            self.fake.resume.set()  # something to say arrived: let the model finish its reply
        self.pieces.append(got)
        text = "".join(got).strip()
        spoken = await self.say(text)
        if self.heard_until is not None and len(self.pieces) == 1:
            return text, Spoken(spoken.start_ms, spoken.end_ms, interrupted=True, heard=text[:self.heard_until])
        return text, spoken


def task() -> CallTask:
    return CallTask(call_id="c1", to="+14155550123", from_number="+14155550100", objective="Book a table.",
                    context=None, fields=(), language="en-US", voice="alloy", account_name="Acme",
                    max_duration_seconds=300, metadata={}, voicemail_message=None)


async def converse(fake: FakeOpenAI, line) -> None:  # noqa: ANN001
    provider = ChatProvider(LLMConfig(base_url=fake.base_url, model="fake", backoff_seconds=0.0, max_retries=0))
    try:
        await LLMBrain(provider).converse(task(), line)
    finally:
        await provider.aclose()


async def test_speaking_starts_before_the_streamed_reply_is_complete():
    fake = FakeOpenAI().start()
    try:
        fake.chat = [Reply(text=REPLY, hold_after_chunks=3), tool("end_call", "Goodbye!", outcome="objective_met",
                                                                 reason="done")]
        line = StreamingLine(fake, ["Copper Pot, hello?", "Yes please.", "Bye."])
        recording = RecordingLine(line, 600_000)
        await converse(fake, recording)
        assert fake.resumed_in_time == [True]  # the first words reached the line while the stream was held
        first = line.pieces[0]
        assert len(first) >= 2 and first[0].strip() == "Sure,", first  # clause by clause, the first clause alone
        assert "".join(first).strip() == REPLY
        assert [t.text for t in recording.turns if t.speaker == "agent"][0] == REPLY
    finally:
        fake.stop()


async def test_a_reply_cut_short_is_in_the_history_only_as_far_as_it_was_heard():
    fake = FakeOpenAI().start()
    try:
        fake.chat = [Reply(text=REPLY), tool("end_call", "Goodbye!", outcome="objective_met", reason="done")]
        line = StreamingLine(fake, ["Copper Pot, hello?", "Wait, hold on.", "Bye."], heard_until=13)
        recording = RecordingLine(line, 600_000)
        await converse(fake, recording)
        said = [m for m in fake.chat_requests[1]["messages"] if m["role"] == "assistant"]
        assert said[0]["content"] == f"Sure, we have {CUT_OFF}", said
        agent = [t for t in recording.turns if t.speaker == "agent"]
        assert (agent[0].text, agent[0].interrupted) == ("Sure, we have", True)
        assert agent[0].to_json()["interrupted"] is True and "interrupted" not in agent[1].to_json()
    finally:
        fake.stop()


def test_streamed_words_are_released_by_clause_and_never_the_private_context():
    context = "the door code is four four one two nine"
    stream = SpeakableStream(clean_utterance, lambda text: len(set(text.lower().split()) & set(context.split())) >= 6)
    assert stream.feed("Sure") == ""
    assert stream.feed(", it costs 3.") == "Sure,"
    assert stream.feed("5 dollars [smiles") == ""  # "3.5" is not a clause end; an open bracket is held back
    assert stream.feed("] each. ") == " it costs 3.5 dollars each."
    assert stream.feed("Also the door code is four four one two nine, ok? ") == ""
    assert stream.withheld and stream.finish() == ""
