"""The LLM brain: a chat model conducts the call through tools, then analyses it.

Each turn the model sees everything said so far and answers with the words to
say and/or a tool: ``end_call(outcome, reason)``, ``press_digits(digits)``,
``wait_silently`` or, when the request has ``transferTo``, ``transfer_call(brief)``
(agent/transfer.py: the call is handed to a person and ends ``transferred``). The brain says the words, runs the tools and listens for the
reply. Silences, record tones and the answer itself reach the model as
bracketed line events.

What answered is decided from the first event (a record tone is voicemail), the
model's own choice (``end_call`` with outcome ``voicemail``, digits pressed
before any words) and the offline agent's phrase classifier for the first words
(IVR or screening). Voicemail with a ``voicemail_message`` waits for the tone
and leaves the message; without one the call ends at once.

A provider failure never leaves dead air: the brain says a short holding line,
listens, and asks again; if the model stays down it apologises, hangs up and
returns a ``failed`` end with reason ``error:llm_unavailable``. Words that would
read out the private context are never said, and ``end_call`` right after the
callee asked a question is held back once so the question gets an answer (a
"bye" in passing does not end the call).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Sequence

import structlog

from byourside_server.agent import etiquette
from byourside_server.agent import phrases as say
from byourside_server.agent import transfer
from byourside_server.agent.base import (
    CALLEE_HUNG_UP, NO_RESPONSE, OBJECTIVE_MET, OBJECTIVE_UNREACHABLE, VOICEMAIL_DETECTED,
    Analysis, Brain, ConversationEnd,
)
from byourside_server.agent.llm.analysis import build_analysis, parse_json_object
from byourside_server.agent.llm.prompts import TOOLS, analysis_messages, analysis_schema, describe_first_event, system_prompt
from byourside_server.agent.llm.provider import ChatProvider, ChatResult, LLMError, LLMRequestError
from byourside_server.agent.llm.speakable import SpeakableStream
from byourside_server.domain import CallTask, EndReason, Turn
from byourside_server.telephony.base import Beep, CalleeHungUp, HangUp, Line, Speech, Spoken

log = structlog.get_logger(__name__)

LLM_UNAVAILABLE = "error:llm_unavailable"
HOLDING_LINES = ("One moment, please.", "Sorry, just one more moment.", "Thanks for bearing with me.")
FAILURE_LINE = ("I'm sorry, I'm having technical difficulties and have to end this call. "
                "We'll try again later. Goodbye.")
DEFAULT_BYE = "Thank you for your time. Goodbye!"
PRIVATE_REFUSAL = "Sorry, I'm not able to share that."
UNANSWERED_QUESTION = ("Not done: the call is still open because the other side just asked a question. "
                       "Answer it first; end the call only once they are really finished.")
CUT_OFF = "[cut off: the callee talked over you and heard only this]"
CUT_OFF_BEFORE_A_WORD = "[cut off: the callee talked before you said a word; they heard nothing]"
NOTES_OUTCOME = "outcome"
REPLY_TOKENS = 200  # one spoken turn; bounds latency on slow or rambling models
ANALYSIS_TOKENS = 1500
_OUTCOME_REASON = {"objective_met": OBJECTIVE_MET, "voicemail": VOICEMAIL_DETECTED}


class _ModelDown(Exception):
    pass


@dataclass(frozen=True)
class _Aloud:
    """A reply spoken while the model streamed it."""

    words: str  # what was released for speaking
    spoken: Spoken
    withheld: bool  # the rest would have repeated the private context


class LLMBrain(Brain):
    name = "llm"

    def __init__(self, provider: ChatProvider, *, stream: bool = True, answer_wait_seconds: float = 5.0,
                 reply_wait_seconds: float = 8.0, hold_wait_seconds: float = 30.0, bye_wait_seconds: float = 3.0,
                 holding_attempts: int = 2, max_model_turns: int = 40, max_silences: int = 3) -> None:
        self.provider = provider
        self.stream = stream
        self.answer_wait = answer_wait_seconds
        self.reply_wait = reply_wait_seconds
        self.hold_wait = hold_wait_seconds
        self.bye_wait = bye_wait_seconds
        self.holding_attempts = holding_attempts
        self.max_model_turns = max_model_turns
        self.max_silences = max_silences
        self.schema_format = True  # cleared once the endpoint rejects the json_schema response format

    async def aclose(self) -> None:
        await self.provider.aclose()

    async def converse(self, task: CallTask, line: Line) -> ConversationEnd:
        return await _Conversation(self, task, line).run()

    async def analyze(self, task: CallTask, turns: Sequence[Turn], end: ConversationEnd) -> Analysis:
        if end.failed or end.answered_by == "voicemail" or not any(t.speaker == "contact" for t in turns):
            return _local_analysis(task, end)
        messages = analysis_messages(task, turns, end.reason, end.answered_by)
        response_format = {"type": "json_schema", "json_schema": {
            "name": "call_analysis", "strict": True, "schema": analysis_schema(task.fields)}}
        try:
            if not self.schema_format:
                raise LLMRequestError(400, "response_format json_schema is not supported by this endpoint")
            result = await self.provider.chat(messages, response_format=response_format, max_tokens=ANALYSIS_TOKENS)
        except LLMError as exc:
            if not _format_rejected(exc):
                raise
            self.schema_format = False
            # Servers without the json_schema format (llama-cpp-python answers 500, others 400/422): JSON mode,
            # the schema passed the way llama.cpp's server takes it and spelled out in the prompt for the rest.
            schema = response_format["json_schema"]["schema"]
            messages[0]["content"] += "\nJSON schema:\n" + json.dumps(schema)
            result = await self.provider.chat(messages, response_format={"type": "json_object", "schema": schema},
                                              max_tokens=ANALYSIS_TOKENS)
        return build_analysis(task, turns, parse_json_object(result.content))


def _format_rejected(exc: LLMError) -> bool:
    """Whether the endpoint refused the ``json_schema`` response format itself."""
    text = str(exc).lower()
    return ("response_format" in text or "json_schema" in text
            or (isinstance(exc, LLMRequestError) and exc.status in (400, 422)))


def _local_analysis(task: CallTask, end: ConversationEnd) -> Analysis:
    if end.failed:
        summary = "The call was ended early because the language model was unavailable; nothing was obtained."
    elif end.answered_by == "voicemail":
        left = bool(end.notes.get("message_left"))
        summary = "A voicemail greeting answered" + ("; the requested message was left after the tone."
                                                      if left else "; the agent hung up without leaving a message.")
    else:
        summary = "Nobody spoke on the call."
    return Analysis(summary=summary, extracted={f.name: None for f in task.fields}, objective_met=None, evidence={})


def clean_utterance(text: str) -> str:
    """The words to speak: no speaker label, quotes, markdown or bracketed stage directions."""
    text = re.sub(r"\[[^\]]*\]|\*+|#+\s", " ", text)
    text = re.sub(r"^\s*(agent|assistant|ai)\s*:\s*", "", text.strip(), flags=re.IGNORECASE)
    text = " ".join(text.split()).strip('"\u201c\u201d ')
    return text[:600]


def leaks_context(text: str, context: str | None, span: int = 6) -> bool:
    """Whether ``text`` repeats ``span`` consecutive words of the private context."""
    if not context:
        return False
    ctx = re.findall(r"[a-z0-9']+", context.lower())
    said = " " + " ".join(re.findall(r"[a-z0-9']+", text.lower())) + " "
    return any(f" {' '.join(ctx[i:i + span])} " in said for i in range(len(ctx) - span + 1))


class _Conversation:
    def __init__(self, brain: LLMBrain, task: CallTask, line: Line) -> None:
        self.brain, self.task, self.line = brain, task, line
        self.messages: list[dict[str, Any]] = [{"role": "system",
                                                "content": system_prompt(task) + transfer.rules_for(task)}]
        self.tools = transfer.tools_for(task, TOOLS)
        self.answered_by: str | None = None
        self.spoke = False
        self.beeped = False
        self.machine_greeting = False  # the first words sounded like a voicemail greeting
        self.last_heard = ""  # the contact's latest words
        self.question_held = False  # end_call was already held back for ``last_heard``

    async def run(self) -> ConversationEnd:
        try:
            return await self._talk()
        except CalleeHungUp:
            await self.line.hangup()
            return self._end(CALLEE_HUNG_UP)
        except _ModelDown:
            with suppress(CalleeHungUp):
                await self.line.say(FAILURE_LINE)
            await self.line.hangup()
            return ConversationEnd(LLM_UNAVAILABLE, answered_by=self.answered_by or "unknown",  # type: ignore[arg-type]
                                   failed=True)

    def _end(self, reason: str, **notes: Any) -> ConversationEnd:
        answered = self.answered_by or ("human" if self.spoke else "unknown")
        return ConversationEnd(reason, answered_by=answered, notes=notes)  # type: ignore[arg-type]

    async def _talk(self) -> ConversationEnd:
        first = await self.line.listen(self.brain.answer_wait)
        if isinstance(first, HangUp):
            await self.line.hangup()
            return self._end(CALLEE_HUNG_UP)
        if isinstance(first, Beep):
            self.answered_by = "voicemail"
            return await self._voicemail(tone_heard=True)
        if isinstance(first, Speech):
            kind = say.classify_answer(first.text)
            if kind in ("ivr", "screening"):
                self.answered_by = kind
            self.machine_greeting = kind == "voicemail"
            self.last_heard = first.text
            self._user(describe_first_event("speech", first.text, self.line.answering_machine_hint()))
        else:
            self._user(describe_first_event("silence", None))
        silences = 0
        for _ in range(self.brain.max_model_turns):
            aloud: _Aloud | None = None
            if self.brain.stream and self.line.streams_speech:
                result, aloud = await self._think_aloud()
            else:
                result = await self._think()
            self.line.note_model_latency(result.first_token_ms)
            words = clean_utterance(result.content) if aloud is None else aloud.words
            calls = {c.name: c for c in result.tool_calls}
            ending = calls.get("end_call")
            if ending is not None and ending.arguments.get("outcome") == "voicemail":
                self.answered_by = "voicemail"
                return await self._voicemail(tone_heard=self.beeped)
            if ending is not None and self._open_question():
                # They just asked something: answer before hanging up, whatever the model thought it heard.
                self._assistant(aloud.words if aloud is not None else "", result, tool_result=UNANSWERED_QUESTION)
                self.question_held = True
                continue
            spoken: Spoken | None = None
            if aloud is not None:  # already spoken while the model wrote it
                spoken = aloud.spoken
                if aloud.withheld:
                    log.warning("llm_context_withheld", call_id=self.task.call_id)
                    spoken = await self.line.say(PRIVATE_REFUSAL)
                    words = f"{words} {PRIVATE_REFUSAL}".strip()
            elif words and leaks_context(words, self.task.context):
                log.warning("llm_context_withheld", call_id=self.task.call_id)
                words = PRIVATE_REFUSAL
            said_at = self._assistant(words, result)
            if words:
                if spoken is None:
                    spoken = await self.line.say(words)
                self.spoke = True
                if spoken.interrupted:
                    self._cut_off(said_at, spoken)
                    ending = None  # they talked over it (even a goodbye): hear them out first
            handing = calls.get("transfer_call") if self.task.transfer_to else None
            if handing is not None:
                if await transfer.hand_over(self.line.transfer, self.task,
                                            transfer.clean_brief(handing.arguments.get("brief"))):
                    return self._end(EndReason.TRANSFERRED)
                self._user(transfer.TRANSFER_FAILED_NOTE)
                continue
            if ending is not None:
                return await self._hang_up(ending.arguments, said_bye=bool(words))
            wait = self.brain.reply_wait
            digits = calls.get("press_digits")
            if digits is not None:
                keys = re.sub(r"[^0-9*#]", "", str(digits.arguments.get("digits", "")))[:20]
                if keys:
                    if not self.spoke and self.answered_by in (None, "human"):
                        self.answered_by = "ivr"
                    await self.line.send_digits(keys)
                wait = self.brain.hold_wait
            if "wait_silently" in calls:
                seconds = calls["wait_silently"].arguments.get("seconds")
                wait = float(seconds) if isinstance(seconds, (int, float)) and 0 < seconds <= 60 else self.brain.hold_wait
            event = await self.line.listen(wait)
            if isinstance(event, HangUp):
                await self.line.hangup()
                return self._end(CALLEE_HUNG_UP)
            if isinstance(event, Speech):
                silences = 0
                self.last_heard, self.question_held = event.text, False
                self._user(event.text)
            elif isinstance(event, Beep):
                self.beeped = True
                if self.machine_greeting:  # a voicemail-like greeting and then the tone: no model needed
                    self.answered_by = "voicemail"
                    return await self._voicemail(tone_heard=True)
                self._user("[record tone]")
            else:
                silences += 1
                if silences > self.brain.max_silences:
                    with suppress(CalleeHungUp):
                        await self.line.say(say.BYE_SILENT)
                    await self.line.hangup()
                    return self._end(NO_RESPONSE)
                self._user(f"[silence: nothing heard for {round(wait)} seconds]")
        await self._goodbye(DEFAULT_BYE)
        return self._end(OBJECTIVE_UNREACHABLE)

    # -- messages --

    def _user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def _open_question(self) -> bool:
        return "?" in self.last_heard and not self.question_held and self.answered_by != "voicemail"

    def _assistant(self, words: str, result: ChatResult, tool_result: str = "done") -> int:
        """Add the model's move to the history; returns the index of its assistant message."""
        index = len(self.messages)
        message: dict[str, Any] = {"role": "assistant", "content": words or None}
        if result.tool_calls:
            message["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                "name": c.name, "arguments": json.dumps(dict(c.arguments))}} for c in result.tool_calls]
        elif not words:
            message["content"] = "[waits]"
        self.messages.append(message)
        for c in result.tool_calls:
            self.messages.append({"role": "tool", "tool_call_id": c.id, "content": tool_result})
        return index

    def _cut_off(self, index: int, spoken: Spoken) -> None:
        """The callee talked over the reply: the history keeps only the words they heard."""
        heard = spoken.heard or ""
        note = CUT_OFF if heard else CUT_OFF_BEFORE_A_WORD
        self.messages[index]["content"] = f"{heard} {note}".strip()

    async def _think(self) -> ChatResult:
        """The model's next move; on provider failure, holding lines and retries, then ``_ModelDown``."""
        for attempt in range(self.brain.holding_attempts + 1):
            try:
                return await self.brain.provider.chat(self.messages, tools=self.tools, stream=self.brain.stream,
                                                      max_tokens=REPLY_TOKENS)
            except LLMRequestError as exc:
                log.error("llm_rejected", call_id=self.task.call_id, status=exc.status)
                raise _ModelDown from None
            except LLMError as exc:
                log.warning("llm_unavailable", call_id=self.task.call_id, attempt=attempt, error=type(exc).__name__)
                if attempt >= self.brain.holding_attempts:
                    break
                await self._hold(HOLDING_LINES[min(attempt, len(HOLDING_LINES) - 1)])
        raise _ModelDown

    async def _think_aloud(self) -> tuple[ChatResult, _Aloud | None]:
        """The model's next move, its words spoken clause by clause as they stream in.

        On a provider failure whatever was released is spoken, and the usual path (holding lines,
        retries) takes over: the second element is then None and the brain says the reply itself.
        """
        guard = SpeakableStream(clean_utterance, lambda text: leaks_context(text, self.task.context))
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        started = time.perf_counter()
        first = True

        def on_content(delta: str) -> None:
            nonlocal first
            if first:
                first = False
                self.line.note_model_latency((time.perf_counter() - started) * 1000)
            piece = guard.feed(delta)
            if piece:
                pieces.put_nowait(piece)

        async def source() -> AsyncIterator[str]:
            while (piece := await pieces.get()) is not None:
                yield piece

        speaking = asyncio.ensure_future(self.line.say_stream(source()))
        try:
            result = await self.brain.provider.chat(self.messages, tools=self.tools, stream=True,
                                                    max_tokens=REPLY_TOKENS, on_content=on_content)
        except LLMError as exc:
            pieces.put_nowait(None)
            await speaking
            if isinstance(exc, LLMRequestError):
                log.error("llm_rejected", call_id=self.task.call_id, status=exc.status)
                raise _ModelDown from None
            log.warning("llm_unavailable", call_id=self.task.call_id, attempt=0, error=type(exc).__name__)
            return await self._think(), None
        except BaseException:
            speaking.cancel()
            raise
        tail = guard.finish()
        if tail:
            pieces.put_nowait(tail)
        pieces.put_nowait(None)
        text, spoken = await speaking
        return result, _Aloud(text, spoken, guard.withheld)

    async def _hold(self, text: str) -> None:
        """Say a holding line and take in whatever the callee says to it."""
        spoken = await self.line.say(text)
        self.messages.append({"role": "assistant", "content": spoken.heard_of(text) or CUT_OFF_BEFORE_A_WORD})
        event = await self.line.listen(2.0)
        if isinstance(event, HangUp):
            raise CalleeHungUp(self.line.elapsed_ms())
        if isinstance(event, Speech):
            self._user(event.text)
        else:
            self._user("[silence]")

    # -- endings --

    async def _hang_up(self, arguments: Any, *, said_bye: bool) -> ConversationEnd:
        outcome = str(arguments.get("outcome") or "objective_unreachable")
        if said_bye:
            with suppress(CalleeHungUp):
                await self.line.listen(self.brain.bye_wait)
            await self.line.hangup()
        else:
            await self._goodbye(DEFAULT_BYE)
        return self._end(_OUTCOME_REASON.get(outcome, OBJECTIVE_UNREACHABLE), **{NOTES_OUTCOME: outcome})

    async def _goodbye(self, text: str) -> None:
        await etiquette.goodbye(self.line, text, self.brain.bye_wait)

    async def _voicemail(self, *, tone_heard: bool) -> ConversationEnd:
        left = await etiquette.leave_voicemail(self.line, self.task, tone_heard=tone_heard,
                                               wait_seconds=self.brain.answer_wait)
        await self.line.hangup()
        return ConversationEnd(VOICEMAIL_DETECTED, answered_by="voicemail", notes={"message_left": left})
