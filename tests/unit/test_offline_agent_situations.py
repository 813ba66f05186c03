"""The offline brain when a reply changes the plan: transfers, spelling requests, a wrong number,
"don't call me", a promise to call back, corrections on the read-back, and what it then reports."""

from __future__ import annotations

import dataclasses

from test_offline_agent_edges import BEEP, PRICE, TABLE, converse, task

from byourside_server.agent import phrases
from byourside_server.agent.base import OBJECTIVE_MET, OBJECTIVE_UNREACHABLE, VOICEMAIL_DETECTED, ConversationEnd
from byourside_server.agent.offline import NOTES_DISPUTED, NOTES_EXTRACTED, NOTES_SITUATION, OfflineBrain
from byourside_server.domain import FieldSpec, Turn

OPENER = ("Hi, this is an AI assistant calling on behalf of Acme Corp. "
          "I'm calling to ask if you have a table for two tonight.")


async def test_after_a_transfer_the_colleague_hears_who_calls_and_the_question() -> None:
    script = ["Hello.", "Oh, bookings does that, let me put you through.", "Bookings, Sam speaking.",
              "Yes, we've got one at eight.", "Yes, that's right."]
    end, line = await converse(script)
    assert end.reason == OBJECTIVE_MET and end.notes[NOTES_EXTRACTED] == {"table_available": True}
    assert line.said[1] == f"{OPENER} {phrases.question_for(TABLE)}"


async def test_a_request_to_spell_gets_the_name_spelled() -> None:
    the_task = task((TABLE,), "Ask whether there is a table booked for Ines Oyelaran tonight")
    script = ["Hello.", "How do you spell the last name?", "Yes, a table for two at seven.", "Yes."]
    end, line = await converse(script, the_task)
    assert line.said[1] == "Of course. Oyelaran: O, Y, E, L, A, R, A, N."
    assert end.notes[NOTES_EXTRACTED] == {"table_available": True}


async def test_a_wrong_number_ends_politely_and_records_nothing() -> None:
    end, line = await converse(["Hello?", "No, you've got the wrong number, this is a private house."],
                               task((TABLE, PRICE)))
    assert end.reason == OBJECTIVE_UNREACHABLE and end.notes[NOTES_SITUATION] == "wrong_number"
    assert end.notes[NOTES_EXTRACTED] == {"table_available": None, "tasting_menu_price": None}
    assert line.said[-1] == phrases.BYE_WRONG_NUMBER
    analysis = await OfflineBrain().analyze(task((TABLE, PRICE)), [], end)
    assert analysis.objective_met is False and "wrong number" in analysis.summary


async def test_do_not_call_and_call_back_end_the_questions() -> None:
    end, line = await converse(["Yes?", "Stop calling me, I'm not interested."])
    assert end.notes[NOTES_SITUATION] == "do_not_call" and line.said[-1] == phrases.BYE_DO_NOT_CALL
    end, line = await converse(["Hello.", "Yes, we do.", "The owner will ring you back about prices."],
                               task((TABLE, PRICE)))
    assert end.notes[NOTES_SITUATION] == "callback" and line.said[-1] == phrases.BYE_CALLBACK
    assert end.notes[NOTES_EXTRACTED] == {"table_available": True, "tasting_menu_price": None}  # kept what was said
    analysis = await OfflineBrain().analyze(task((TABLE, PRICE)), [], end)
    assert analysis.objective_met is False and "call back" in analysis.summary


async def test_a_correction_in_the_same_breath_as_the_no_is_taken() -> None:
    end, line = await converse(["Hi", "It's eighty dollars.", "No, sorry, it's ninety dollars."], task((PRICE,)))
    assert end.reason == OBJECTIVE_MET and end.notes[NOTES_EXTRACTED] == {"tasting_menu_price": 90}
    assert not any(s.startswith(phrases.RECHECK) for s in line.said)


async def test_a_correction_for_one_of_several_values_keeps_the_others() -> None:
    script = ["Hi", "Yes, we do.", "It's eighty dollars.", "No, the tasting menu price is ninety dollars."]
    end, _ = await converse(script, task((TABLE, PRICE)))
    assert end.notes[NOTES_EXTRACTED] == {"table_available": True, "tasting_menu_price": 90}


async def test_a_value_repeated_unchanged_after_a_dispute_is_dropped_as_contradicted() -> None:
    script = ["Hi", "It's eighty dollars.", "No, that's not right.", "It's eighty dollars."]
    end, _ = await converse(script, task((PRICE,)))
    assert end.reason == OBJECTIVE_UNREACHABLE
    assert end.notes[NOTES_EXTRACTED] == {"tasting_menu_price": None} and end.notes[NOTES_DISPUTED] == [PRICE.name]
    analysis = await OfflineBrain().analyze(task((PRICE,)), [], end)
    assert analysis.objective_met is False and "contradicted" in analysis.summary


async def test_a_denied_yes_no_read_back_is_the_other_answer() -> None:
    end, _ = await converse(["Hi", "Yes, we do.", "No, that's not right."])
    assert end.notes[NOTES_EXTRACTED] == {"table_available": False}


async def test_a_greeting_after_our_question_gets_the_question_again() -> None:
    end, line = await converse(["Hello.", "Front desk, Lee speaking.", "Yes, we do.", "Yes."])
    assert end.reason == OBJECTIVE_MET
    assert sum(phrases.question_for(TABLE) in s for s in line.said) == 2


async def test_evidence_is_the_answer_not_the_read_back_confirmation() -> None:
    the_task = task((TABLE,))
    turns = [Turn("contact", "Hello.", 0, 1), Turn("agent", f"{OPENER} {phrases.question_for(TABLE)}", 1, 2),
             Turn("contact", "We do, yes.", 2, 3),
             Turn("agent", "Just to confirm: table available, yes. Is that right?", 3, 4),
             Turn("contact", "Yes, that's right.", 4, 5)]
    end = ConversationEnd(reason=OBJECTIVE_MET, notes={NOTES_EXTRACTED: {"table_available": True}})
    analysis = await OfflineBrain().analyze(the_task, turns, end)
    assert analysis.evidence == {"table_available": {"quote": "We do, yes.", "turnIndex": 2}}


async def test_objective_met_needs_every_value() -> None:
    fields = (TABLE, FieldSpec("missing", "number"))
    end = ConversationEnd(reason=OBJECTIVE_MET, notes={NOTES_EXTRACTED: {"table_available": True}})
    analysis = await OfflineBrain().analyze(task(fields), [], end)
    assert analysis.objective_met is False and "Not obtained: missing" in analysis.summary


async def test_the_same_key_can_be_pressed_at_two_levels_of_a_menu() -> None:
    top = "Welcome. For bookings, changes, or cancellations, press 2. For anything else, press 0."
    sub = "To book a table, press 2. To cancel, press 3."
    end, line = await converse([top, sub, "Bookings, Ana speaking.", "Yes, we do.", "Yes."])
    assert line.digits == ["2", "2"]
    assert (end.reason, end.answered_by) == (OBJECTIVE_MET, "ivr")


async def test_a_tone_after_a_greeting_we_took_for_a_person_is_voicemail() -> None:
    end, line = await converse(["Yo, it's Jonas. You know what to do.", BEEP])
    assert (end.reason, end.answered_by) == (VOICEMAIL_DETECTED, "voicemail")
    assert end.notes["reached_human"] is False and len(line.said) == 1


async def test_a_greeting_that_goes_on_after_we_spoke_is_voicemail_even_without_fields() -> None:
    # The machine was taken for a person on its first words; the rest of the greeting is no answer.
    the_task = dataclasses.replace(task((), "Remind Chris about Friday's meeting"),
                                   voicemail_message="The meeting on Friday is at ten.")
    script = ["Hi, you've reached Chris Morgan.", "I can't come to the phone right now, please leave a message.", BEEP]
    end, line = await converse(script, the_task)
    assert (end.reason, end.answered_by) == (VOICEMAIL_DETECTED, "voicemail")
    assert end.notes["reached_human"] is False and end.notes["reply"] is None
    assert end.notes["message_left"] is True and line.said[-1].endswith("The meeting on Friday is at ten.")
    analysis = await OfflineBrain().analyze(the_task, [], end)
    assert analysis.objective_met is None


async def test_a_greeting_without_a_tone_or_the_word_message_is_voicemail() -> None:
    for greeting in ("Hey, it's Sam. I'm not around right now, leave your name and number and I'll get back to you.",
                     "You've reached Morgan Plumbing, we're all out on jobs, text this number and we'll get back to you.",
                     "Sorry, I'm not available to take your call."):
        end, line = await converse(["Hello.", greeting], task((TABLE,)))
        assert (end.reason, end.answered_by) == (VOICEMAIL_DETECTED, "voicemail"), greeting
        assert end.notes[NOTES_EXTRACTED] == {"table_available": None} and len(line.said) == 1
        end, _ = await converse(["Hello.", greeting], task(()))
        assert (end.reason, end.answered_by) == (VOICEMAIL_DETECTED, "voicemail"), greeting


async def test_a_person_taking_a_message_for_someone_else_is_no_voicemail() -> None:
    script = ["Hello?", "She's not available right now, leave your name and number and she'll call you back."]
    end, _ = await converse(script, task((PRICE,)))
    assert end.answered_by == "human" and end.notes[NOTES_SITUATION] == "callback"


async def test_a_transfer_to_a_colleagues_voicemail_ends_the_call() -> None:
    script = ["Hello.", "Let me put you through to Sam.", "Hi, Sam here, I'm away from my desk, leave a message."]
    end, line = await converse(script)
    assert end.reason == OBJECTIVE_UNREACHABLE and end.notes[NOTES_SITUATION] == "transferred_to_voicemail"
    assert end.notes["reached_human"] is True and len(line.said) == 1


async def test_a_call_back_offer_with_an_unrelated_date_records_nothing() -> None:
    the_task = task((FieldSpec("report_ready", "string", "When the report will be ready"),), "Ask about the report")
    end, _ = await converse(["Hello.", "He's out today. Can I take a number and get him to give you a ring?"],
                            the_task)
    assert end.notes[NOTES_SITUATION] == "callback" and end.notes[NOTES_EXTRACTED] == {"report_ready": None}


async def test_a_screener_that_will_not_put_us_through_is_not_a_voicemail() -> None:
    script = ["Please say your name and why you're calling.", "Sorry, they're not available right now. Goodbye."]
    end, _ = await converse(script)
    assert (end.reason, end.answered_by) == (OBJECTIVE_UNREACHABLE, "screening")


async def test_an_unclear_reply_to_the_read_back_gets_the_question_once_more() -> None:
    script = ["Hello.", "It's eighty dollars.", "Hmm.", "No, it's ninety dollars."]
    end, line = await converse(script, task((PRICE,)))
    assert phrases.CONFIRM_AGAIN in line.said and end.notes[NOTES_EXTRACTED] == {"tasting_menu_price": 90}
