"""Conducting one claimed call: dial, converse, analyse, write the outcome.

The only place that composes telephony and the brain. Status changes go
through the store's conditional transitions; a cancel request or a lost lease
stops the call wherever it is. A status write that meets a database outage is
retried (``StoreRetry``) instead of dropping the call: every write is
conditional on this worker's lease, so a retry cannot act on a call another
worker has taken over, and the conversation never waits for the database.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Awaitable, Callable, Sequence, TypeVar

import structlog

from byourside_server.agent.base import Brain, ConversationEnd
from byourside_server.agent.realtime import MediaBrain, RealtimeCall
from byourside_server.clock import Clock, SystemClock
from byourside_server.compliance.consent import ConsentPolicy, discard_recording
from byourside_server.domain import CallStatus, CallTask, EndReason, Turn
from byourside_server.errors import StoreUnavailable
from byourside_server.recordings import RecordingStore, keep_recording
from byourside_server.runtime.recording_line import CallTimeUp, RecordingLine
from byourside_server.store.calls import CallOutcome, CallRepo
from byourside_server.store.records import Account, CallRecord
from byourside_server.telephony.base import (
    CalleeHungUp,
    DialOutcome,
    DialRequest,
    DialResult,
    Telephony,
)

if TYPE_CHECKING:
    from byourside_server.compliance.service import Compliance

log = structlog.get_logger(__name__)

TIME_UP_LINE = "I'm sorry, we've reached the time limit for this call, so I have to end it here. Goodbye."
# Real seconds a conversation may overrun its maximum duration before it is cut (a stuck brain).
WATCHDOG_GRACE_SECONDS = 60

_DIAL_STATUS = {
    DialResult.NO_ANSWER: (CallStatus.NO_ANSWER, EndReason.NO_ANSWER),
    DialResult.BUSY: (CallStatus.NO_ANSWER, EndReason.BUSY),
    DialResult.DECLINED: (CallStatus.DECLINED, EndReason.DECLINED),
    DialResult.FAILED: (CallStatus.FAILED, EndReason.ERROR_CARRIER),
}


T = TypeVar("T")


@dataclass
class SessionDeps:
    calls: CallRepo
    telephony: Telephony
    brain: Brain
    ring_timeout_seconds: float
    recordings: RecordingStore | None = None  # None: the line's local path is stored as it is
    # Checked just before dialling: the do-not-call list and calling hours (compliance/service.py).
    gate: Compliance | None = None
    # Whether calls are recorded and when the agent says so (None: the defaults, compliance/consent.py).
    consent: ConsentPolicy | None = None


@dataclass(frozen=True)
class StoreRetry:
    """How a call in hand retries a store write that meets an outage (``StoreUnavailable``).

    Capped exponential back-off with jitter on the injected clock, for up to
    ``give_up_after_seconds`` (then the outage is raised). The worker cancels the
    session sooner if a heartbeat finds its lease taken.
    """

    clock: Clock = field(default_factory=SystemClock)
    give_up_after_seconds: float = 600.0
    first_delay_seconds: float = 0.1
    max_delay_seconds: float = 3.0
    jitter: float = 0.25  # each delay is shortened by up to this fraction, so workers do not retry in step

    def delay(self, attempt: int) -> float:
        capped = min(self.max_delay_seconds, self.first_delay_seconds * 2 ** min(attempt, 32))
        return capped * (1 - random.uniform(0, self.jitter))

    async def run(self, write: Callable[[], Awaitable[T]], *, what: str, call_id: str) -> T:
        started = self.clock.monotonic()
        attempt = 0
        while True:
            try:
                result = await write()
            except StoreUnavailable:
                waited = self.clock.monotonic() - started
                if waited >= self.give_up_after_seconds:
                    raise
                if attempt == 0:
                    log.warning("store_write_retrying", call_id=call_id, write=what)
                await self.clock.sleep(min(self.delay(attempt), self.give_up_after_seconds - waited))
                attempt += 1
                continue
            if attempt:
                log.info("store_write_recovered", call_id=call_id, write=what, attempts=attempt + 1)
            return result


class LiveTranscript:
    """Keeps the transcript so far in the store for clients following a live call.

    It never holds up the conversation: one background task writes the newest
    turns, and while the store is down it retries with the newest snapshot, so
    turns said meanwhile are written together once it is back. Best effort: the
    final transcript is part of the call's outcome.
    """

    def __init__(self, save: Callable[[Sequence[Turn]], Awaitable[None]], retry: StoreRetry, call_id: str,
                 after: asyncio.Future) -> None:
        self._save = save
        self._retry = retry
        self._call_id = call_id
        self._after = after  # the in_progress write: live turns are only stored on a live call
        self._latest: Sequence[Turn] = ()
        self._wake = asyncio.Event()
        self._closed = False
        self._saving: asyncio.Future | None = None
        self._task = asyncio.create_task(self._write_loop())

    async def update(self, turns: Sequence[Turn]) -> None:
        self._latest = turns
        self._wake.set()

    async def close(self) -> None:
        """Stop writing; a write already sent is let finish rather than cut off inside its transaction."""
        self._closed = True
        if self._saving is not None:
            await asyncio.wait({self._saving})
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _write_loop(self) -> None:
        await asyncio.wait({self._after})
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._retry.run(self._write_latest, what="save_live_turns", call_id=self._call_id)
            except Exception:  # noqa: BLE001 - a live transcript is best effort; the final one is in the outcome
                log.warning("live_turns_not_saved", call_id=self._call_id)

    async def _write_latest(self) -> None:
        if self._closed:
            return
        self._saving = asyncio.ensure_future(self._save(self._latest))
        try:
            await asyncio.shield(self._saving)
        finally:
            self._saving = None


class CallSession:
    def __init__(
        self, deps: SessionDeps, call: CallRecord, account: Account, worker_id: str, retry: StoreRetry | None = None
    ) -> None:
        self.deps = deps
        self.call = call
        self.account = account
        self.worker_id = worker_id
        self.retry = retry or StoreRetry()
        self.cancel_requested = asyncio.Event()
        self.consent = deps.consent or ConsentPolicy()

    def _task(self) -> CallTask:
        c = self.call
        return CallTask(
            call_id=c.id,
            to=c.to_number,
            from_number=c.from_number,
            objective=c.objective,
            context=c.context,
            fields=c.fields,
            language=c.language,
            voice=c.voice,
            account_name=self.account.spoken_name,
            ai_disclosure=self.account.ai_disclosure,
            max_duration_seconds=c.max_duration_seconds,
            metadata=c.metadata,
            voicemail_message=c.voicemail_message,
            transfer_to=tuple(c.transfer_to),
            transfer_mode=c.transfer_mode,
        )

    async def _write(self, what: str, write: Callable[[], Awaitable[T]]) -> T:
        return await self.retry.run(write, what=what, call_id=self.call.id)

    async def run(self) -> None:
        calls, call_id = self.deps.calls, self.call.id
        try:
            gate = self.deps.gate
            if gate is not None and await self._write(
                "dial_gate", lambda: gate.stop_before_dial(calls, self.call, self.worker_id)
            ):
                return  # ended (suppressed) or held until calling hours open; nothing was dialled
            may_dial = await self._write("mark_dialing", lambda: calls.mark_dialing(call_id, self.worker_id))
            # An attempt whose commit reached the database but whose answer was lost makes the
            # retry answer False: the row then shows this worker's own dial start.
            may_dial = may_dial or await self._write("read_back", self._dial_started_by_me)
            if not may_dial:
                await self._write("release", lambda: calls.release(call_id, self.worker_id))
                return
        except StoreUnavailable:
            # Nothing was dialled. A queued call is claimed again once its lease expires; one whose
            # dial start did commit is reaped as worker_lost, never dialled.
            log.error("call_not_started_store_unavailable", call_id=call_id)
            return
        log.info("call_dialing", call_id=call_id)
        request = DialRequest(
            call_id=call_id,
            to=self.call.to_number,
            from_number=self.call.from_number,
            ring_timeout_seconds=self.deps.ring_timeout_seconds,
            language=self.call.language,
            voice=self.call.voice,
            record=self.consent.records(self.account),
        )
        try:
            dialed = await self._until_canceled(self.deps.telephony.dial(request))
        except Exception:
            log.exception("dial_error", call_id=call_id)
            await self._finish(CallOutcome(CallStatus.FAILED, EndReason.ERROR_DIAL))
            return
        if dialed is None:
            await self._finish(CallOutcome(CallStatus.FAILED, EndReason.CANCELED))
            return
        if dialed.result is not DialResult.ANSWERED or dialed.line is None:
            status, reason = _DIAL_STATUS.get(dialed.result, (CallStatus.FAILED, EndReason.ERROR_CARRIER))
            if dialed.result is DialResult.FAILED and dialed.reason:
                reason = EndReason.error(dialed.reason)
            await self._finish(CallOutcome(status, reason))
            return
        await self._converse(dialed)

    async def _dial_started_by_me(self) -> bool:
        now = await self.deps.calls.get_any(self.call.id)
        return (
            now is not None
            and now.status is CallStatus.DIALING
            and now.lease_owner == self.worker_id
            and now.cancel_requested_at is None
        )

    async def _converse(self, dialed: DialOutcome) -> None:
        assert dialed.line is not None
        call_id, calls = self.call.id, self.deps.calls
        log.info("call_answered", call_id=call_id)
        # The callee is on the line: the conversation starts at once, the status write follows.
        in_progress = asyncio.create_task(
            self._write("mark_in_progress", lambda: calls.mark_in_progress(call_id, self.worker_id))
        )
        live = LiveTranscript(lambda turns: calls.save_live_turns(call_id, self.worker_id, turns), self.retry,
                              call_id, after=in_progress)
        try:
            await self._converse_and_finish(dialed, in_progress, live)
        finally:
            await live.close()
            in_progress.cancel()

    async def _converse_and_finish(self, dialed: DialOutcome, in_progress: asyncio.Task, live: LiveTranscript) -> None:
        assert dialed.line is not None
        call_id = self.call.id
        # Recorded: the account keeps recordings and this line makes one. Then, where the callee's
        # place asks for it (or the account always does), the agent's first words say so.
        recorded = self.consent.records(self.account) and dialed.line.recording_path() is not None
        task = replace(self._task(),
                       recording_notice=recorded and self.consent.notice_due(self.account, self.call.to_number))
        line = RecordingLine(dialed.line, task.max_duration_seconds * 1000, on_turn=live.update)
        failed = False
        try:
            end = await asyncio.wait_for(
                self._until_canceled(self._conversation(task, line, dialed)),
                timeout=task.max_duration_seconds + WATCHDOG_GRACE_SECONDS,
            )
            if end is None:
                end = ConversationEnd(EndReason.CANCELED, answered_by="unknown")
        except CalleeHungUp:
            end = ConversationEnd(EndReason.CALLEE_HUNG_UP)
        except (CallTimeUp, asyncio.TimeoutError):
            await self._say_quietly(line, TIME_UP_LINE)
            end = ConversationEnd(EndReason.MAX_DURATION)
        except Exception:
            log.exception("brain_error", call_id=call_id)
            end, failed = ConversationEnd(EndReason.ERROR_AGENT, answered_by="unknown"), True
        finally:
            await dialed.line.hangup()
        try:
            analysis = await self.deps.brain.analyze(task, tuple(line.turns), end)
        except Exception:
            log.exception("analysis_error", call_id=call_id)
            analysis, failed = None, True
        if failed or end.failed:
            status = CallStatus.FAILED
        else:
            status = CallStatus.VOICEMAIL if end.answered_by == "voicemail" else CallStatus.COMPLETED
        answered = line.answer_verdict(end.answered_by)
        await live.close()
        await asyncio.wait({in_progress})  # so the call's events stay in order: in_progress before the end
        if not in_progress.cancelled() and in_progress.exception() is not None:
            log.warning("in_progress_not_recorded", call_id=call_id, error=type(in_progress.exception()).__name__)
        await self._finish(
            CallOutcome(
                status=status,
                end_reason=end.reason,
                summary=analysis.summary if analysis else None,
                extracted=dict(analysis.extracted) if analysis else {f.name: None for f in task.fields},
                turns=tuple(line.turns),
                objective_met=analysis.objective_met if analysis else None,
                evidence=analysis.evidence if analysis else None,
                duration_seconds=math.ceil(line.elapsed_ms() / 1000),
                # Uploaded before the outcome is written; after failed retries, None. Not recorded: a line
                # that wrote audio despite the dial request's record=False has it deleted.
                recording_path=await keep_recording(self.deps.recordings, call_id, dialed.line.recording_path())
                if recorded else discard_recording(dialed.line.recording_path()),
                latency=dialed.line.latency_report(),
                answered_by=answered.kind.value,
                answered_by_evidence=answered.evidence,
            )
        )

    def _conversation(self, task: CallTask, line: RecordingLine, dialed: DialOutcome) -> Awaitable[ConversationEnd]:
        """The brain's conversation: on the call's audio for a media brain (a realtime model), else over the Line."""
        brain = self.deps.brain
        if isinstance(brain, MediaBrain):
            from byourside_server.voice.realtime_line import RealtimeLine

            if isinstance(dialed.line, RealtimeLine):
                async def keep_turns(turns: Sequence[Turn]) -> None:
                    line.turns[:] = turns
                    if line.on_turn is not None:
                        await line.on_turn(tuple(turns))

                call = RealtimeCall(keep_turns, dialed.line.latency, dialed.line.hold_audio)
                return brain.converse_media(task, dialed.line.channel, call)
        return brain.converse(task, line)

    async def _until_canceled(self, work):  # noqa: ANN001, ANN202
        """Await ``work`` unless a cancel request arrives first (then None)."""
        job = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.cancel_requested.wait())
        try:
            await asyncio.wait({job, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if job.done():
            return job.result()
        job.cancel()
        try:
            await job
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the work is being abandoned
            pass
        return None

    async def _say_quietly(self, line: RecordingLine, text: str) -> None:
        try:
            await asyncio.wait_for(line.say_final(text), timeout=10)
        except Exception:  # noqa: BLE001 - the call is ending either way
            pass

    async def _finish(self, outcome: CallOutcome) -> None:
        calls, call_id = self.deps.calls, self.call.id
        try:
            recorded = await self._write("finish", lambda: calls.finish(call_id, self.worker_id, outcome))
            # As with the dial start: a lost answer to a committed attempt makes the retry answer False.
            recorded = recorded or await self._write("read_back", lambda: self._outcome_stored(outcome))
        except StoreUnavailable:
            # The outage outlasted BYS_CALL_WRITE_RETRY_SECONDS: the outcome is lost, and once the
            # database is back and the lease expired, the call is reaped as worker_lost (never redialled).
            log.error("call_outcome_not_saved", call_id=call_id, status=outcome.status.value)
            return
        if recorded:
            log.info("call_ended", call_id=call_id, status=outcome.status.value, end_reason=str(outcome.end_reason))
        else:
            log.warning("call_end_not_recorded", call_id=call_id, status=outcome.status.value)

    async def _outcome_stored(self, outcome: CallOutcome) -> bool:
        now = await self.deps.calls.get_any(self.call.id)
        return now is not None and now.status is outcome.status and now.end_reason == outcome.end_reason
