"""``Compliance``: the rules of responsible calling, applied at three moments.

- placement (``plan``): a number on the do-not-call list is refused (``destination_suppressed``);
  a call is held until its ``scheduledAt`` and until the callee's calling hours open, or, with
  ``callingHours: "strict"``, refused (``outside_calling_hours``);
- just before dialling (``stop_before_dial``, the session's gate): the same two checks again,
  since time has passed and the list may have grown since the call was queued;
- when a call ends (``after_transition``, in the transaction of its terminal status): an opt-out
  heard from the callee joins the number to the list and marks the call ``optOut``; a retry
  policy queues the next attempt, inside calling hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from byourside_server.agent.understanding import is_do_not_call
from byourside_server.clock import Clock
from byourside_server.compliance.hours import CallingHours, zones_for_number
from byourside_server.compliance.requests import check_schedule_horizon
from byourside_server.compliance.retry import RetryPolicy, outcome_of
from byourside_server.domain import CallStatus, EndReason
from byourside_server.errors import DestinationSuppressed, OutsideCallingHours
from byourside_server.guardrails.numbers import is_simulator_number
from byourside_server.settings import Settings
from byourside_server.store.call_types import CallOutcome
from byourside_server.store.calls import CallRepo
from byourside_server.store.compliance import ComplianceRepo, calling_hours_in, insert_attempt_in, mark_opt_out_in
from byourside_server.store.records import CallRecord
from byourside_server.store.suppressions import SuppressionRepo, add_in, contains_in

log = structlog.get_logger(__name__)

# Why a queued call waits (the call's ``holdReason``, ext)
HOLD_SCHEDULED = "scheduled"
HOLD_CALLING_HOURS = "calling_hours"
HOLD_RETRY_BACKOFF = "retry_backoff"

NEVER_OPEN = ("The callee's number spans time zones whose calling hours never overlap, so it can never be "
              "called inside them. Widen the account's calling hours (PUT /v1/agent/calling-hours).")


def opening(hours: CallingHours, number: str, at: datetime) -> datetime | None:
    """When calling hours let ``number`` ring, from ``at`` on (see ``CallingHours.next_open``).
    The simulator's fictional numbers (+1 NXX 555-01XX) reach no one, so any time is theirs."""
    if is_simulator_number(number):
        return at
    return hours.next_open(zones_for_number(number), at)


@dataclass(frozen=True)
class Timing:
    """When a new call may be dialled: ``not_before`` None means at once."""

    scheduled_at: datetime | None = None
    not_before: datetime | None = None
    hold_reason: str | None = None


class Compliance:
    def __init__(self, settings: Settings, clock: Clock, suppressions: SuppressionRepo, repo: ComplianceRepo) -> None:
        self.clock = clock
        self.suppressions = suppressions
        self.repo = repo
        self.default_hours = CallingHours.parse(
            settings.calling_hours_start, settings.calling_hours_end, settings.calling_hours_days)

    async def hours_for(self, account_id: str) -> CallingHours:
        return await self.repo.calling_hours(account_id) or self.default_hours

    # placement

    async def plan(self, account_id: str, to: str, *, scheduled_at: datetime | None, strict: bool) -> Timing:
        now = self.clock.now()
        check_schedule_horizon(scheduled_at, now)
        if await self.suppressions.contains(account_id, to):
            raise DestinationSuppressed()
        due = max(scheduled_at, now) if scheduled_at is not None else now
        opens = opening(await self.hours_for(account_id), to, due)
        if opens is None:
            raise OutsideCallingHours(NEVER_OPEN)
        if opens > due:
            if strict:
                raise OutsideCallingHours(retry_after=max(1, math.ceil((opens - now).total_seconds())))
            return Timing(scheduled_at, opens, HOLD_CALLING_HOURS)
        if due > now:
            return Timing(scheduled_at, due, HOLD_SCHEDULED)
        return Timing(scheduled_at)

    # the dial gate (runtime/session.py)

    async def stop_before_dial(self, calls: CallRepo, call: CallRecord, worker_id: str) -> bool:
        """True when ``call`` (claimed by ``worker_id``, not dialled) must not be dialled now: it was
        ended (its number joined the do-not-call list) or held until calling hours open."""
        if await self.suppressions.contains(call.account_id, call.to_number):
            await calls.finish(call.id, worker_id, CallOutcome(CallStatus.FAILED, EndReason.SUPPRESSED))
            log.info("call_suppressed_before_dial", call_id=call.id)
            return True
        now = self.clock.now()
        opens = opening(await self.hours_for(call.account_id), call.to_number, now)
        if opens is None:
            await calls.finish(call.id, worker_id, CallOutcome(CallStatus.FAILED, EndReason.error("outside_calling_hours")))
            return True
        if opens > now:
            await self.repo.hold(call.id, worker_id, opens, HOLD_CALLING_HOURS)
            log.info("call_held_for_calling_hours", call_id=call.id, until=opens.isoformat())
            return True
        return False

    # the end of a call (a transition hook, in the status change's transaction)

    async def after_transition(self, conn: AsyncConnection, call: CallRecord, status: CallStatus,
                               now: datetime) -> CallRecord:
        """Record an opt-out and queue the next attempt; returns the call as it now stands."""
        if not status.terminal:
            return call
        if not call.opt_out and any(turn.speaker == "contact" and is_do_not_call(turn.text) for turn in call.turns or ()):
            await mark_opt_out_in(conn, call.id)
            await add_in(conn, call.account_id, [call.to_number], source="opt_out", now=now, call_id=call.id)
            call = replace(call, opt_out=True)
            log.info("callee_opted_out", call_id=call.id)
        if call.retry and not call.opt_out:
            call = await self._next_attempt(conn, call, status, now)
        return call

    async def _next_attempt(self, conn: AsyncConnection, call: CallRecord, status: CallStatus,
                            now: datetime) -> CallRecord:
        policy = RetryPolicy.from_json(call.retry or {})
        attempt = (call.attempt or 1) + 1
        if outcome_of(status, call.end_reason) not in policy.on or attempt > policy.max_attempts:
            return call
        if await contains_in(conn, call.account_id, call.to_number):
            return call
        due = (call.ended_at or now) + timedelta(minutes=policy.backoff_before(attempt))
        hours = await calling_hours_in(conn, call.account_id) or self.default_hours
        opens = opening(hours, call.to_number, due)
        if opens is None:
            return call
        reason = HOLD_RETRY_BACKOFF if opens == due else HOLD_CALLING_HOURS
        new_id = await insert_attempt_in(conn, call, attempt=attempt, not_before=opens, hold_reason=reason, now=now)
        log.info("call_retry_queued", call_id=call.id, next_call_id=new_id, attempt=attempt, hold_reason=reason)
        if call.attempt_of is None:
            return replace(call, attempts=(*(call.attempts or (call.id,)), new_id))
        return call
