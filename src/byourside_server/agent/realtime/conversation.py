"""The realtime brain: one call conducted by a speech-to-speech model over the call's media channel.

The model hears the callee's audio and answers with audio of its own; this
module is the glue around it (agent/realtime/__init__.py has the duties):

- Inbound frames go to the session as they arrive; the model's audio is
  played as it arrives.
- Barge-in: when the model's turn detection hears the callee start while a
  reply plays, the channel is cleared and the reply truncated to what had
  left, so the model and the transcript keep only what was heard.
- Tools: ``end_call`` lets the reply's goodbye finish playing, then hangs up;
  ``press_digits`` sends DTMF after the audio queued; ``wait_silently``
  answers and lets the model stay quiet; ``transfer_call`` (with the request's
  ``transferTo``) lets the reply finish, then hands the call to a person
  through the carrier (agent/transfer.py), or tells the model nobody answered.
- Turns: both sides' transcripts, in order of when they were said; an agent
  turn cut short is marked ``interrupted``, its text cut to the share heard.
- Latency per reply: the model's turn detection (end of speech to its
  verdict), the model (verdict to first audio) and the whole (end of speech to
  our first audio out), in the call's ``latency`` report.
- A dropped or failing provider: a holding line is played ("one moment") and
  a new session is opened with the conversation so far in its instructions,
  up to ``retries`` times; after that the call fails with
  ``error:realtime_unavailable``. The time limit has the model say a short
  goodbye; cancelling is the runtime's (the task is cancelled).

After the call ``analyze`` is the configured analyst's (the LLM brain when one
is set up, else the offline agent's extraction), as for any call.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
from collections import deque
from collections.abc import Sequence
from typing import Any

import structlog

from byourside_server.agent.base import (
    OBJECTIVE_MET,
    OBJECTIVE_UNREACHABLE,
    VOICEMAIL_DETECTED,
    Analysis,
    Brain,
    ConversationEnd,
)
from byourside_server.agent import transfer
from byourside_server.agent.llm.prompts import TOOLS, system_prompt
from byourside_server.agent.realtime import (
    AudioOut,
    CalleeSpeechStarted,
    CalleeSpeechStopped,
    MediaBrain,
    RealtimeCall,
    RealtimeError,
    RealtimeModel,
    RealtimeSession,
    ResponseDone,
    ToolCallRequested,
    Transcript,
)
from byourside_server.domain import CallTask, EndReason, Turn
from byourside_server.telephony.base import Line
from byourside_server.agent.realtime.replies import Reply, heard_share
from byourside_server.telephony.media import AudioFrame, MediaChannel

log = structlog.get_logger(__name__)

REALTIME_UNAVAILABLE = EndReason.error("realtime_unavailable")
GOODBYE_WAIT_SECONDS = 15.0  # at most this long for a goodbye to finish playing before hanging up
FIRST_WORDS_AFTER_SECONDS = 6.0  # a line that stays silent this long after answer: the model speaks first
_OUTCOME_REASON = {"objective_met": OBJECTIVE_MET, "voicemail": VOICEMAIL_DETECTED}
REALTIME_RULES = (
    "\n- You hear the call's audio directly. The person who answered usually speaks first; answer them. "
    "Say your goodbye in words before you call end_call, in the same reply.")
RESUME_NOTE = ("The phone line to you dropped for a moment and is back. In a few words apologise for the "
               "interruption, then go on from where the conversation was.")
TIME_UP_NOTE = ("The time limit for this call has been reached. In one short sentence, in the call's language, "
                "say you have to end the call now, and goodbye. Do not call any tool.")


class RealtimeBrain(MediaBrain):
    """A brain that converses on the call's audio with a realtime model; the runtime hands it the media channel."""

    name = "realtime"

    def __init__(self, model: RealtimeModel, analyst: Brain, *, retries: int = 2, retry_delay_seconds: float = 0.5,
                 first_words_after_seconds: float | None = FIRST_WORDS_AFTER_SECONDS) -> None:
        self.model, self.analyst = model, analyst
        self.retries, self.retry_delay_seconds = retries, retry_delay_seconds
        self.first_words_after_ms = None if first_words_after_seconds is None else int(first_words_after_seconds * 1000)

    async def converse(self, task: CallTask, line: Line) -> ConversationEnd:
        raise RuntimeError("a realtime model converses on audio: use an audio carrier (BYS_TELEPHONY=sip)")

    async def converse_media(self, task: CallTask, media: MediaChannel, call: RealtimeCall) -> ConversationEnd:
        """Conduct the call over ``media`` until it ends (see the module docstring)."""
        return await _Conversation(self, task, media, call).run()

    async def analyze(self, task: CallTask, turns: Sequence[Turn], end: ConversationEnd) -> Analysis:
        from byourside_server.agent.realtime.analysis import OfflineBrain, offline_notes

        if isinstance(self.analyst, OfflineBrain):  # it reads the values from notes: a realtime model words its own
            end = dataclasses.replace(end, notes={**end.notes, **offline_notes(task, turns)})
        return await self.analyst.analyze(task, turns, end)

    async def aclose(self) -> None:
        await self.analyst.aclose()


class _Conversation:
    def __init__(self, brain: RealtimeBrain, task: CallTask, media: MediaChannel, call: RealtimeCall) -> None:
        self.brain, self.task, self.media, self.call = brain, task, media, call
        self.session: RealtimeSession | None = None
        self.turns: list[Turn] = []
        self.replies: dict[tuple[int, str], Reply] = {}  # by (session number, the provider's response id)
        self._generation = 0  # sessions opened so far
        self.end: ConversationEnd | None = None
        self.finished = asyncio.Event()
        self.callee_spoke = False
        self._audio_origin_ms = 0  # timeline ms at which the current session's audio began
        self._spans: deque[tuple[int, int | None]] = deque()  # callee speech (start, end) awaiting its transcript
        self._heard_at: tuple[int, int] | None = None  # (speech end ms, ms the model judged the turn over)
        self._ending: asyncio.Task | None = None

    # the whole call
    async def run(self) -> ConversationEnd:
        self.instructions = system_prompt(self.task) + REALTIME_RULES + transfer.rules_for(self.task)
        inbound = asyncio.get_running_loop().create_task(self._pump_inbound())
        deadline = asyncio.get_running_loop().create_task(self._watch_time())
        try:
            self.session = await self._connect(self.instructions)
            if self.session is None:
                return self._failed()
            attempts = 0
            while self.end is None and not self.media.ended.is_set():
                try:
                    await self._drive(self.session)
                except RealtimeError as exc:
                    log.warning("realtime_session_lost", call_id=self.task.call_id, error=str(exc),
                                retryable=exc.retryable)
                    await self._close_session()
                    attempts += 1
                    if not exc.retryable or attempts > self.brain.retries or self.media.ended.is_set():
                        return self._failed()
                    self.session = await self._resume()
                    if self.session is None:
                        return self._failed()
            if self.end is not None:
                await self.media.hangup()
                return self.end
            return ConversationEnd(EndReason.CALLEE_HUNG_UP, answered_by=self._answered_by())
        finally:
            tasks = [t for t in (inbound, deadline, self._ending) if t is not None]
            for running in tasks:
                running.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._close_session()
            await self._record_pending_replies()

    async def _connect(self, instructions: str) -> RealtimeSession | None:
        for attempt in range(self.brain.retries + 1):
            try:
                session = await self.brain.model.connect(instructions, transfer.tools_for(self.task, TOOLS),
                                                         voice=self.task.voice,
                                                         language=self.task.language)
            except RealtimeError as exc:
                log.warning("realtime_connect_failed", call_id=self.task.call_id, error=str(exc), attempt=attempt)
                if not exc.retryable or self.media.ended.is_set():
                    return None
                await asyncio.sleep(self.brain.retry_delay_seconds * 2 ** attempt)
                continue
            self._audio_origin_ms = self.media.elapsed_ms()
            self._generation += 1
            return session
        return None

    async def _resume(self) -> RealtimeSession | None:
        """A new session with the conversation so far; the holding line plays if it is not up when we fall quiet.

        Audio already received plays on. Once a new session is up, the model is asked to carry on (with a
        short apology) when the callee heard the holding line or a reply was cut off by the drop.
        """
        said = sorted([*self.turns, *(Turn("agent", r.text, r.start_ms, r.start_ms) for r in self.replies.values()
                                      if not r.recorded and r.start_ms is not None and r.text)],
                      key=lambda t: t.start_ms)
        history = "\n".join(f"{'You' if t.speaker == 'agent' else 'Them'}: {t.text}" for t in said)
        connecting = asyncio.ensure_future(
            self._connect(self.instructions + "\n\nTHE CONVERSATION SO FAR:\n" + (history or "(nothing yet)")))
        quiet = asyncio.ensure_future(self._all_played())
        try:
            await asyncio.wait({connecting, quiet}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            quiet.cancel()
        cut_off = any(not r.done.is_set() and r.start_ms is not None for r in self.replies.values())
        held = not connecting.done() and self.call.hold_audio is not None and not self.media.ended.is_set()
        if held:
            self.media.play(self.call.hold_audio)
        session = await connecting
        if session is not None and (held or cut_off):
            await session.respond(RESUME_NOTE)
        return session

    async def _all_played(self) -> None:
        for reply in list(self.replies.values()):
            await reply.all_played()

    def _failed(self) -> ConversationEnd:
        return ConversationEnd(REALTIME_UNAVAILABLE, answered_by=self._answered_by(), failed=True)

    def _answered_by(self) -> Any:
        return "human" if self.callee_spoke else "unknown"

    async def _close_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                await session.aclose()
            except Exception:  # noqa: BLE001 - the session is being dropped either way
                pass

    # audio in
    async def _pump_inbound(self) -> None:
        async for event in self.media.events():
            session = self.session
            if isinstance(event, AudioFrame) and session is not None:
                try:
                    await session.send_audio(event.inbound)
                except RealtimeError:
                    pass  # the event side sees the same failure and reconnects

    # the model's events
    async def _drive(self, session: RealtimeSession) -> None:
        """Handle the session's events until the call ends; raises ``RealtimeError`` when the session fails."""
        events = asyncio.get_running_loop().create_task(self._consume(session))
        ended = asyncio.ensure_future(self.media.ended.wait())
        finished = asyncio.ensure_future(self.finished.wait())
        nudge = asyncio.get_running_loop().create_task(self._speak_first_on_silence(session))
        try:
            await asyncio.wait({events, ended, finished}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (ended, finished, nudge):
                waiter.cancel()
            if not events.done():
                events.cancel()
            results = await asyncio.gather(events, return_exceptions=True)
        error = results[0]
        if isinstance(error, RealtimeError):
            raise error
        if isinstance(error, Exception):
            raise error
        if not events.cancelled() and self.end is None and not self.media.ended.is_set():
            raise RealtimeError("the realtime session ended before the call", retryable=True)

    async def _consume(self, session: RealtimeSession) -> None:
        async for event in session.events():
            if isinstance(event, AudioOut):
                self._play(event)
            elif isinstance(event, CalleeSpeechStarted):
                await self._callee_started(session, event)
            elif isinstance(event, CalleeSpeechStopped):
                self._callee_stopped(event)
            elif isinstance(event, Transcript):
                await self._transcript(event)
            elif isinstance(event, ToolCallRequested):
                await self._tool(session, event)
            elif isinstance(event, ResponseDone):
                self._reply(event.response_id).done.set()
                asyncio.get_running_loop().create_task(self._record_reply((self._generation, event.response_id)))

    async def _speak_first_on_silence(self, session: RealtimeSession) -> None:
        """Nobody has said a word since answer (on the media's clock): the model opens the conversation."""
        wait_ms = self.brain.first_words_after_ms
        if wait_ms is None:
            return
        while self.media.elapsed_ms() < wait_ms:
            await asyncio.sleep(0.1)
        if not self.callee_spoke and not self.replies and not self._spans:
            await session.respond()

    def _reply(self, response_id: str) -> Reply:
        """A reply of the current session (ids are the provider's, unique only within one session)."""
        return self.replies.setdefault((self._generation, response_id), Reply())

    def _timeline(self, audio_ms: int | None) -> int:
        """A position in the session's audio as ms on the call's timeline (now, when the provider gave none)."""
        return self._audio_origin_ms + audio_ms if audio_ms is not None else self.media.elapsed_ms()

    def _play(self, event: AudioOut) -> None:
        reply = self._reply(event.response_id)
        if reply.cut or self.media.ended.is_set() or len(event.pcm) == 0:
            return  # audio of a reply the callee already cut short
        if reply.start_ms is None:
            reply.start_ms = self.media.elapsed_ms()
            self._first_audio(reply)
        reply.playbacks.append(self.media.play(event.pcm))

    def _first_audio(self, reply: Reply) -> None:
        """Latency of the reply to the callee's last turn, once its first audio has left."""
        heard, self._heard_at = self._heard_at, None
        if heard is None or self.call.latency is None:
            return
        speech_end, decided = heard
        latency, model_ms = self.call.latency, self.media.elapsed_ms() - decided
        latency.heard(speech_end, decided - speech_end, 0)
        latency.model_replied(model_ms)

        async def spoke() -> None:
            first = reply.playbacks[0] if reply.playbacks else None
            if first is not None:
                await first
                if first.started_at_ms is not None:
                    latency.spoke(first.started_at_ms + self.media.inbound_delay_ms, 0)
                    return
            latency.forget_pending()

        asyncio.get_running_loop().create_task(spoke())

    async def _callee_started(self, session: RealtimeSession, event: CalleeSpeechStarted) -> None:
        self.callee_spoke = True
        self._spans.append((self._timeline(event.audio_ms), None))
        for (generation, response_id), reply in self.replies.items():
            if reply.playing and not reply.cut:
                reply.cut = True
                self.media.clear()
                heard = reply.played_ms
                log.info("realtime_barge_in", call_id=self.task.call_id, heard_ms=heard)
                if generation == self._generation:
                    await session.truncate(response_id, heard)

    def _stop_speaking(self) -> None:
        for reply in self.replies.values():
            if reply.playing:
                reply.cut = True
        self.media.clear()

    def _callee_stopped(self, event: CalleeSpeechStopped) -> None:
        end = self._timeline(event.audio_ms)
        if self._spans and self._spans[-1][1] is None:
            self._spans[-1] = (self._spans[-1][0], end)
        self._heard_at = (end, max(end, self.media.elapsed_ms()))

    async def _transcript(self, event: Transcript) -> None:
        if not event.final:
            return
        if event.speaker == "agent":
            if event.response_id is not None:
                self._reply(event.response_id).text = event.text.strip()
            return
        start, end = self._spans.popleft() if self._spans else (self.media.elapsed_ms(), None)
        text = event.text.strip()
        if text:
            self.callee_spoke = True
            await self._add_turn(Turn("contact", text, start, end if end is not None else self.media.elapsed_ms()))

    async def _add_turn(self, turn: Turn) -> None:
        bisect.insort(self.turns, turn, key=lambda t: t.start_ms)
        await self.call.on_turns(tuple(self.turns))

    async def _record_reply(self, key: tuple[int, str]) -> None:
        """The agent's turn once its audio has all left (or was cut): only what was heard."""
        reply = self.replies[key]
        await reply.all_played()
        if reply.recorded or reply.start_ms is None:
            return
        reply.recorded = True
        played, total = reply.played_ms, reply.total_ms
        interrupted = played < total
        text = heard_share(reply.text, played, total) if interrupted else reply.text
        if text or not interrupted:
            await self._add_turn(Turn("agent", text, reply.start_ms, reply.start_ms + played, interrupted=interrupted))

    async def _record_pending_replies(self) -> None:
        for key, reply in list(self.replies.items()):
            if not reply.recorded and reply.start_ms is not None:
                for playback in reply.playbacks:
                    playback.finish()  # the call is over: what had left is what was heard
                await self._record_reply(key)

    # tools
    async def _tool(self, session: RealtimeSession, event: ToolCallRequested) -> None:
        name, args = event.name, event.arguments
        log.info("realtime_tool", call_id=self.task.call_id, tool=name)
        if name == "end_call":
            await session.send_tool_result(event.call_id, name, "ending the call", respond=False)
            outcome = str(args.get("outcome") or "objective_unreachable")
            # The goodbye plays out while the session's remaining events (its ``response.done``) are read.
            self._ending = asyncio.get_running_loop().create_task(self._end_after_goodbye(event.response_id, outcome))
        elif name == "press_digits":
            digits = "".join(ch for ch in str(args.get("digits", "")) if ch in "0123456789*#")[:20]
            if digits:
                await self.media.send_digits(digits)
            await session.send_tool_result(event.call_id, name, f"pressed {digits}" if digits else "no digits given")
        elif name == "wait_silently":
            await session.send_tool_result(event.call_id, name, "waiting", respond=False)
        elif name == "transfer_call" and self.task.transfer_to:
            brief = transfer.clean_brief(args.get("brief"))
            self._ending = asyncio.get_running_loop().create_task(
                self._transfer_after_words(session, event, brief))
        else:
            await session.send_tool_result(event.call_id, name, f"unknown tool {name}")

    async def _end_after_goodbye(self, response_id: str | None, outcome: str) -> None:
        """Let the goodbye said with ``end_call`` finish playing, then end the conversation (``run`` hangs up)."""
        reply = self.replies.get((self._generation, response_id or ""))
        if reply is not None:
            try:
                await asyncio.wait_for(self._done_and_played(reply), GOODBYE_WAIT_SECONDS)
            except asyncio.TimeoutError:
                pass
        answered = "voicemail" if outcome == "voicemail" else self._answered_by()
        self.end = ConversationEnd(_OUTCOME_REASON.get(outcome, OBJECTIVE_UNREACHABLE), answered_by=answered,
                                   notes={"outcome": outcome})
        self.finished.set()

    async def _transfer_after_words(self, session: RealtimeSession, event: ToolCallRequested,
                                    brief: str | None) -> None:
        """Let the reply ("I'll connect you now") finish playing, then hand the call over; if nobody takes
        it, tell the model so that it carries on."""
        reply = self.replies.get((self._generation, event.response_id or ""))
        if reply is not None:
            try:
                await asyncio.wait_for(self._done_and_played(reply), GOODBYE_WAIT_SECONDS)
            except TimeoutError:
                pass
        if await transfer.hand_over(self.media.transfer, self.task, brief):
            self.end = ConversationEnd(EndReason.TRANSFERRED, answered_by=self._answered_by())
            self.finished.set()
            return
        try:
            await session.send_tool_result(event.call_id, event.name, transfer.TRANSFER_FAILED_NOTE)
        except RealtimeError:
            pass  # the session is being replaced; the conversation goes on in the next one

    async def _done_and_played(self, reply: Reply) -> None:
        await reply.done.wait()
        await reply.all_played()

    # the time limit
    async def _watch_time(self) -> None:
        limit_ms = self.task.max_duration_seconds * 1000
        while (left_ms := limit_ms - self.media.elapsed_ms()) > 0:  # on the media's clock, not the wall's
            await asyncio.sleep(min(0.2, left_ms / 1000))
        session = self.session
        if session is not None and not self.media.ended.is_set():
            self._stop_speaking()
            before = set(self.replies)
            try:
                await session.respond(TIME_UP_NOTE)
                await asyncio.wait_for(self._goodbye_reply(before), GOODBYE_WAIT_SECONDS)
            except (RealtimeError, asyncio.TimeoutError):
                pass
        self.end = ConversationEnd(EndReason.MAX_DURATION, answered_by=self._answered_by())
        self.finished.set()

    async def _goodbye_reply(self, before: set[tuple[int, str]]) -> None:
        while True:
            fresh = [r for rid, r in self.replies.items() if rid not in before]
            if fresh:
                await self._done_and_played(fresh[0])
                return
            await asyncio.sleep(0.05)
