"""Conducting one claimed call: dial, converse, analyse, write the outcome.

The only place that composes telephony and the brain. Status changes go
through the store's conditional transitions; a cancel request or a lost lease
stops the call wherever it is.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import structlog

from byourside_server.agent.base import CALLEE_HUNG_UP, Brain, ConversationEnd
from byourside_server.domain import CallStatus, CallTask
from byourside_server.store.calls import CallOutcome, CallRepo
from byourside_server.store.records import Account, CallRecord
from byourside_server.telephony.base import CalleeHungUp, DialOutcome, DialRequest, DialResult, Telephony
from byourside_server.runtime.recording_line import CallTimeUp, RecordingLine

log = structlog.get_logger(__name__)

TIME_UP_LINE = "I'm sorry, we've reached the time limit for this call, so I have to end it here. Goodbye."
# Real seconds a conversation may overrun its maximum duration before it is cut (a stuck brain).
WATCHDOG_GRACE_SECONDS = 60

_DIAL_STATUS = {
    DialResult.NO_ANSWER: (CallStatus.NO_ANSWER, "no_answer"),
    DialResult.BUSY: (CallStatus.NO_ANSWER, "busy"),
    DialResult.DECLINED: (CallStatus.DECLINED, "declined"),
    DialResult.FAILED: (CallStatus.FAILED, "error:carrier"),
}


@dataclass
class SessionDeps:
    calls: CallRepo
    telephony: Telephony
    brain: Brain
    ring_timeout_seconds: float


class CallSession:
    def __init__(self, deps: SessionDeps, call: CallRecord, account: Account, worker_id: str) -> None:
        self.deps = deps
        self.call = call
        self.account = account
        self.worker_id = worker_id
        self.cancel_requested = asyncio.Event()

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
            account_name=self.account.name,
            max_duration_seconds=c.max_duration_seconds,
            metadata=c.metadata,
            voicemail_message=c.voicemail_message,
        )

    async def run(self) -> None:
        calls, call_id = self.deps.calls, self.call.id
        if not await calls.mark_dialing(call_id, self.worker_id):
            await calls.release(call_id, self.worker_id)
            return
        log.info("call_dialing", call_id=call_id)
        request = DialRequest(
            call_id=call_id,
            to=self.call.to_number,
            from_number=self.call.from_number,
            ring_timeout_seconds=self.deps.ring_timeout_seconds,
            language=self.call.language,
            voice=self.call.voice,
        )
        try:
            dialed = await self._until_canceled(self.deps.telephony.dial(request))
        except Exception:
            log.exception("dial_error", call_id=call_id)
            await self._finish(CallOutcome(CallStatus.FAILED, "error:dial"))
            return
        if dialed is None:
            await self._finish(CallOutcome(CallStatus.FAILED, "canceled"))
            return
        if dialed.result is not DialResult.ANSWERED or dialed.line is None:
            status, reason = _DIAL_STATUS.get(dialed.result, (CallStatus.FAILED, "error:carrier"))
            if dialed.result is DialResult.FAILED and dialed.reason:
                reason = f"error:{dialed.reason}"
            await self._finish(CallOutcome(status, reason))
            return
        await self._converse(dialed)

    async def _converse(self, dialed: DialOutcome) -> None:
        assert dialed.line is not None
        call_id = self.call.id
        await self.deps.calls.mark_in_progress(call_id, self.worker_id)
        log.info("call_answered", call_id=call_id)
        task = self._task()
        line = RecordingLine(dialed.line, task.max_duration_seconds * 1000, on_turn=self._save_live_turns)
        failed = False
        try:
            end = await asyncio.wait_for(
                self._until_canceled(self.deps.brain.converse(task, line)),
                timeout=task.max_duration_seconds + WATCHDOG_GRACE_SECONDS,
            )
            if end is None:
                end = ConversationEnd("canceled", answered_by="unknown")
        except CalleeHungUp:
            end = ConversationEnd(CALLEE_HUNG_UP)
        except (CallTimeUp, asyncio.TimeoutError):
            await self._say_quietly(line, TIME_UP_LINE)
            end = ConversationEnd("max_duration")
        except Exception:
            log.exception("brain_error", call_id=call_id)
            end, failed = ConversationEnd("error:agent", answered_by="unknown"), True
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
                recording_path=dialed.line.recording_path(),
                latency=dialed.line.latency_report(),
            )
        )

    async def _save_live_turns(self, turns) -> None:  # noqa: ANN001
        try:
            await self.deps.calls.save_live_turns(self.call.id, self.worker_id, turns)
        except Exception:  # noqa: BLE001 - a live transcript is best effort; the final one is written at the end
            log.warning("live_turns_not_saved", call_id=self.call.id)

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
        if await self.deps.calls.finish(self.call.id, self.worker_id, outcome):
            log.info("call_ended", call_id=self.call.id, status=outcome.status.value, end_reason=outcome.end_reason)
        else:
            log.warning("call_end_not_recorded", call_id=self.call.id, status=outcome.status.value)
