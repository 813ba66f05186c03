"""The offline brain's policy on edge cases, driven by a scripted fake line."""

from __future__ import annotations

from typing import Sequence

from byourside_server.agent import phrases
from byourside_server.agent.base import (
    CALLEE_HUNG_UP, NO_RESPONSE, OBJECTIVE_MET, OBJECTIVE_UNREACHABLE, VOICEMAIL_DETECTED, ConversationEnd,
)
from byourside_server.agent.offline import NOTES_CONFIRMED, NOTES_EXTRACTED, NOTES_REFUSED, OfflineBrain
from byourside_server.domain import CallTask, FieldSpec, Turn
from byourside_server.telephony.base import Beep, CalleeHungUp, HangUp, Line, LineEvent, Silence, Speech, Spoken

SILENCE, HANGUP, BEEP = "<silence>", "<hang up>", "<beep>"
TABLE = FieldSpec("table_available", "boolean")
PRICE = FieldSpec("tasting_menu_price", "number")


class ScriptedLine(Line):
    """Plays a fixed list of callee events, one per ``listen``; silence once the script runs out."""

    def __init__(self, script: Sequence[str], *, hang_up_on_say: int | None = None) -> None:
        self.script = list(script)
        self.hang_up_on_say = hang_up_on_say
        self.said: list[str] = []
        self.digits: list[str] = []
        self.now = 0
        self.closed = False
        self.hung_up = False

    async def say(self, text: str) -> Spoken:
        if self.closed or (self.hang_up_on_say is not None and len(self.said) >= self.hang_up_on_say):
            self.closed = True
            raise CalleeHungUp(self.now)
        self.said.append(text)
        self.now += 1000
        return Spoken(self.now - 1000, self.now)

    async def listen(self, timeout_seconds: float) -> LineEvent:
        if self.closed:
            return HangUp(self.now)
        item = self.script.pop(0) if self.script else SILENCE
        start = self.now
        self.now += int(timeout_seconds * 1000) if item == SILENCE else 1000
        if item == SILENCE:
            return Silence(start, self.now)
        if item == HANGUP:
            self.closed = True
            return HangUp(self.now)
        if item == BEEP:
            return Beep(self.now)
        return Speech(item, start, self.now)

    async def send_digits(self, digits: str) -> None:
        self.digits.append(digits)

    async def hangup(self) -> None:
        self.hung_up = True
        self.closed = True

    def elapsed_ms(self) -> int:
        return self.now


def task(fields: tuple[FieldSpec, ...] = (TABLE,), objective: str = "Ask if they have a table for two tonight") -> CallTask:
    return CallTask(call_id="c", to="+14155550123", from_number="+14155550999", objective=objective, context=None,
                    fields=fields, language="en-US", voice="alloy", account_name="Acme Corp", max_duration_seconds=600)


async def converse(script: Sequence[str], the_task: CallTask | None = None, **kwargs: int) -> tuple[ConversationEnd, ScriptedLine]:
    line = ScriptedLine(script, **kwargs)
    end = await OfflineBrain().converse(the_task or task(), line)
    assert line.hung_up
    return end, line


async def test_who_is_this_mid_question_re_discloses_and_asks_again() -> None:
    end, line = await converse(["Hello?", "Sorry, who's calling?", "Yes, we do.", "Yes, that's right."])
    assert end.reason == OBJECTIVE_MET
    assert end.notes[NOTES_EXTRACTED] == {"table_available": True}
    assert line.said[1] == ("I'm an AI assistant, calling on behalf of Acme Corp. I'm calling to ask if you have "
                            "a table for two tonight. Quick yes or no: table available?")


async def test_who_is_this_forever_does_not_loop() -> None:
    end, line = await converse(["Hi"] + ["Who is this?"] * 10)
    assert end.reason == OBJECTIVE_UNREACHABLE
    assert len(line.said) <= 6


async def test_refusal_is_not_re_asked() -> None:
    end, line = await converse(["Hi", "I can't share that, sorry."])
    assert end.reason == OBJECTIVE_UNREACHABLE
    assert end.notes[NOTES_REFUSED] == ["table_available"]
    assert sum("table available?" in s for s in line.said) == 1
    assert line.said[-1] == phrases.BYE_REFUSED


async def test_one_refusal_does_not_stop_the_other_questions() -> None:
    fields = (TABLE, PRICE, FieldSpec("dress_code"))
    end, line = await converse(["Hi", "No comment.", "It's $85.", "That's confidential.", "Yes."], task(fields))
    assert end.notes[NOTES_EXTRACTED] == {"table_available": None, "tasting_menu_price": 85, "dress_code": None}
    assert end.notes[NOTES_REFUSED] == ["table_available", "dress_code"]
    assert any("dress code" in s for s in line.said)


async def test_silence_at_answer_gets_one_hello_then_the_conversation() -> None:
    end, line = await converse([SILENCE, SILENCE, "Oh, hi! Sorry, go ahead.", "Yes.", "Yes, that's right."])
    assert line.said[0] == phrases.SILENT_HELLO
    assert line.said[1].startswith("Hi, this is an AI assistant calling on behalf of Acme Corp.")
    assert (end.reason, end.answered_by) == (OBJECTIVE_MET, "human")


async def test_silence_at_answer_after_the_hello_is_no_response() -> None:
    end, line = await converse([SILENCE] * 5)
    assert (end.reason, end.answered_by) == (NO_RESPONSE, "unknown")
    assert line.said == [phrases.SILENT_HELLO, phrases.BYE_SILENT]


async def test_silence_mid_call_gets_one_nudge_then_ends() -> None:
    end, line = await converse(["Hi", SILENCE, SILENCE])
    assert (end.reason, end.answered_by) == (NO_RESPONSE, "human")
    assert line.said.count(phrases.NUDGE) == 1
    analysis = await OfflineBrain().analyze(task(), [], end)
    assert analysis.objective_met is False


async def test_an_answer_after_the_nudge_counts() -> None:
    end, line = await converse(["Hi", SILENCE, "Sorry, yes we do.", "Yes."])
    assert end.reason == OBJECTIVE_MET and end.notes[NOTES_EXTRACTED] == {"table_available": True}


async def test_hang_up_while_waiting_for_an_answer() -> None:
    end, _ = await converse(["Hi", HANGUP], task((TABLE, PRICE)))
    assert (end.reason, end.answered_by) == (CALLEE_HUNG_UP, "human")
    assert end.notes[NOTES_EXTRACTED] == {"table_available": None, "tasting_menu_price": None}


async def test_hang_up_while_we_speak_keeps_what_was_obtained() -> None:
    end, line = await converse(["Hi", "Yes, we do."], task((TABLE, PRICE)), hang_up_on_say=1)
    assert end.reason == CALLEE_HUNG_UP
    assert end.notes[NOTES_EXTRACTED] == {"table_available": True, "tasting_menu_price": None}
    assert len(line.said) == 1


async def test_no_answer_is_asked_once_more_then_left_empty() -> None:
    end, line = await converse(["Hi", "Lovely weather today.", "The weather really is lovely."], task((PRICE,)))
    assert end.reason == OBJECTIVE_UNREACHABLE
    assert end.notes[NOTES_EXTRACTED] == {"tasting_menu_price": None}
    assert [s for s in line.said if "tasting menu price?" in s][1] == phrases.reask(
        "Could you tell me the tasting menu price?")
    assert not any(s.startswith("Just to confirm") for s in line.said)
    assert line.said[-1] == phrases.BYE_PARTIAL


async def test_a_no_to_the_read_back_asks_again_once() -> None:
    end, line = await converse(["Hi", "It's $80.", "No, that's not right.", "Sorry, it's $85."], task((PRICE,)))
    assert end.reason == OBJECTIVE_MET
    assert end.notes[NOTES_EXTRACTED] == {"tasting_menu_price": 85}
    assert end.notes[NOTES_CONFIRMED] is False
    assert line.said[2] == f"{phrases.RECHECK} Could you tell me the tasting menu price?"
    analysis = await OfflineBrain().analyze(task((PRICE,)), [], end)
    assert "disputed" in analysis.summary


async def test_a_disputed_value_without_a_new_answer_is_dropped() -> None:
    end, _ = await converse(["Hi", "It's $80.", "No.", "Hmm, I'm not sure any more."], task((PRICE,)))
    assert end.reason == OBJECTIVE_UNREACHABLE
    assert end.notes[NOTES_EXTRACTED] == {"tasting_menu_price": None}


async def test_please_hold_is_waited_through() -> None:
    end, line = await converse(["Hi", "Let me check, one moment please.", "Yes, we do.", "Yes."])
    assert end.notes[NOTES_EXTRACTED] == {"table_available": True}
    assert sum("table available?" in s for s in line.said) == 1


async def test_a_bare_beep_is_voicemail() -> None:
    end, line = await converse([BEEP])
    assert (end.reason, end.answered_by) == (VOICEMAIL_DETECTED, "voicemail")
    assert line.said == []


async def test_ivr_menu_from_speech_picks_the_matching_option() -> None:
    menu = "Press 1 for sales. Press 2 for technical support. Press 0 for the operator."
    the_task = task((FieldSpec("can_repair_this_week", "boolean"),), "My printer is broken; ask if they can repair it")
    end, line = await converse([menu, "Support, Sam speaking.", "Yes, we can.", "Yes."], the_task)
    assert line.digits == ["2"]
    assert (end.reason, end.answered_by) == (OBJECTIVE_MET, "ivr")


async def test_a_menu_that_never_connects_ends_unreachable() -> None:
    menu = "For billing, press 1. For anything else, press 0."
    end, line = await converse([menu] * 5, task((TABLE,), "Ask about parking"))
    assert line.digits == ["0"]
    assert (end.reason, end.answered_by) == (OBJECTIVE_UNREACHABLE, "ivr")


async def test_screening_then_hold_then_person() -> None:
    script = ["Please state your name and the reason for your call.", "Thanks, please hold.",
              "Hello, this is Dana.", "Yes, we do.", "Yes."]
    end, line = await converse(script)
    assert line.said[0] == ("Hi, this is an AI assistant calling on behalf of Acme Corp. "
                            "I'm calling to ask if you have a table for two tonight.")
    assert (end.reason, end.answered_by) == (OBJECTIVE_MET, "screening")


async def test_no_fields_with_a_who_is_this_first() -> None:
    end, line = await converse(["Hi", "Who's this?", "Sure, we have tables tonight."], task(()))
    assert end.reason == OBJECTIVE_MET
    assert end.notes["reply"] == "Sure, we have tables tonight."


# --- analyze ---------------------------------------------------------------------


async def test_analyze_reads_the_transcript_when_the_runtime_ended_the_call() -> None:
    fields = (TABLE, PRICE)
    the_task = task(fields)
    turns = [
        Turn("contact", "Hello, Copper Pot.", 0, 1000),
        Turn("agent", f"Hi there. {phrases.question_for(TABLE)}", 1000, 2000),
        Turn("contact", "Yes, we do.", 2000, 3000),
        Turn("agent", phrases.question_for(PRICE), 3000, 4000),
        Turn("contact", "It's eighty-five dollars.", 4000, 5000),
    ]
    analysis = await OfflineBrain().analyze(the_task, turns, ConversationEnd(reason="max_duration"))
    assert analysis.extracted == {"table_available": True, "tasting_menu_price": 85}
    assert analysis.objective_met is False
    assert "maximum duration" in analysis.summary


async def test_analyze_coerces_noted_values_to_the_declared_types() -> None:
    fields = (PRICE, TABLE, FieldSpec("name"), FieldSpec("missing", "number"))
    end = ConversationEnd(reason=OBJECTIVE_MET, notes={NOTES_EXTRACTED: {
        "tasting_menu_price": 85.0, "table_available": "yes", "name": 12}})
    analysis = await OfflineBrain().analyze(task(fields), [], end)
    assert analysis.extracted == {"tasting_menu_price": 85, "table_available": True, "name": "12", "missing": None}
    assert type(analysis.extracted["tasting_menu_price"]) is int
    assert analysis.objective_met is False  # "missing" was not obtained


async def test_analyze_a_call_canceled_before_anyone_spoke() -> None:
    analysis = await OfflineBrain().analyze(task((TABLE,)), [], ConversationEnd(reason="canceled", answered_by="unknown"))
    assert analysis.extracted == {"table_available": None}
    assert analysis.objective_met is None
    assert analysis.summary == ("The call was answered, but nobody spoke. Not obtained: table available. "
                                "The call was canceled before it finished.")


async def test_analyze_an_error_end() -> None:
    analysis = await OfflineBrain().analyze(task(()), [], ConversationEnd(reason="error:media", answered_by="human"))
    assert "technical problem" in analysis.summary
    assert analysis.objective_met is False


class InterruptingLine(ScriptedLine):
    """The callee talks over the first question: only the words before it reach them."""

    def __init__(self, script: Sequence[str]) -> None:
        super().__init__(script)
        self.cut = False

    async def say(self, text: str) -> Spoken:
        spoken = await super().say(text)
        question = phrases.question_for(TABLE)
        if not self.cut and question in text:
            self.cut = True
            return Spoken(spoken.start_ms, spoken.end_ms, interrupted=True, heard=text[: text.index(question)].strip())
        return spoken


async def test_a_question_the_callee_talked_over_is_asked_again_in_full() -> None:
    line = InterruptingLine(["Hello?", "Oh, I'm not sure about that one. Sorry.", "Yes, we do.", "Yes, that's right."])
    end = await OfflineBrain().converse(task(), line)
    assert end.reason == OBJECTIVE_MET
    assert end.notes[NOTES_EXTRACTED] == {"table_available": True}
    assert line.said[1] == phrases.question_for(TABLE)  # the bare question again, not a "do you know?" re-ask
