"""Retries by outcome: the request's ``retry`` (ext) policy and when it calls again.

``{"on": ["no_answer", "busy", "voicemail", "failed"], "maxAttempts": 3, "backoffMinutes": 30}``:
a call that ends with one of the listed outcomes is followed by a new call (its own call
object, linked by ``attemptOf``/``attempts``) after the back-off, until ``maxAttempts``
calls were placed. ``backoffMinutes`` is one number, or a list giving the wait before the
second, third ... attempt (the last one repeats). Calling hours apply to every attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from byourside_server.domain import CallStatus, EndReason
from byourside_server.errors import InvalidRequest

OUTCOMES = ("no_answer", "busy", "voicemail", "failed")
DEFAULT_ON = ("no_answer", "busy")
MAX_ATTEMPTS = 10
MAX_BACKOFF_MINUTES = 7 * 24 * 60
DEFAULT_BACKOFF_MINUTES = 60
# Endings that are decisions, not bad luck: never retried.
_NOT_RETRIED = {EndReason.CANCELED.value, EndReason.SUPPRESSED.value}


@dataclass(frozen=True)
class RetryPolicy:
    on: tuple[str, ...]
    max_attempts: int
    backoff_minutes: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        backoff: int | list[int] = self.backoff_minutes[0] if len(self.backoff_minutes) == 1 else list(self.backoff_minutes)
        return {"on": list(self.on), "maxAttempts": self.max_attempts, "backoffMinutes": backoff}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> "RetryPolicy":
        """From what ``to_json`` stored (trusted: it was validated on the way in)."""
        backoff = value["backoffMinutes"]
        return cls(tuple(value["on"]), int(value["maxAttempts"]),
                   tuple(backoff) if isinstance(backoff, list) else (int(backoff),))

    def backoff_before(self, attempt: int) -> int:
        """Minutes to wait before placing attempt number ``attempt`` (2, 3, ...)."""
        return self.backoff_minutes[min(attempt - 2, len(self.backoff_minutes) - 1)]


def outcome_of(status: CallStatus, end_reason: str | None) -> str | None:
    """The retry outcome a finished call counts as, or None when it is never retried."""
    if end_reason in _NOT_RETRIED:
        return None
    if status is CallStatus.NO_ANSWER:
        return "busy" if end_reason == EndReason.BUSY.value else "no_answer"
    if status is CallStatus.VOICEMAIL:
        return "voicemail"
    if status is CallStatus.FAILED:
        return "failed"
    return None  # completed and declined: someone answered, or refused the call


def _whole(value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
        raise InvalidRequest(f"'retry.{what}' must be a whole number from {low} to {high}.")
    if not low <= value <= high:
        raise InvalidRequest(f"'retry.{what}' must be a whole number from {low} to {high}.")
    return int(value)


def parse_retry(value: Any) -> RetryPolicy | None:
    """The request's ``retry`` object; each problem is ``invalid_request`` with what to write instead."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("'retry' must be an object such as {\"on\": [\"no_answer\", \"busy\"], \"maxAttempts\": 3, "
                             "\"backoffMinutes\": 30}.")
    unknown = set(value) - {"on", "maxAttempts", "backoffMinutes"}
    if unknown:
        raise InvalidRequest("'retry' takes only 'on', 'maxAttempts' and 'backoffMinutes'.")
    on = value.get("on", list(DEFAULT_ON))
    if not isinstance(on, list) or not on or any(o not in OUTCOMES for o in on):
        raise InvalidRequest("'retry.on' must be a non-empty list of: " + ", ".join(OUTCOMES) + ".")
    attempts = _whole(value.get("maxAttempts", 3), 1, MAX_ATTEMPTS, "maxAttempts")
    backoff = value.get("backoffMinutes", DEFAULT_BACKOFF_MINUTES)
    if isinstance(backoff, list):
        if not backoff or len(backoff) > MAX_ATTEMPTS:
            raise InvalidRequest(f"'retry.backoffMinutes' as a list needs 1 to {MAX_ATTEMPTS} items.")
        minutes = tuple(_whole(b, 1, MAX_BACKOFF_MINUTES, "backoffMinutes") for b in backoff)
    else:
        minutes = (_whole(backoff, 1, MAX_BACKOFF_MINUTES, "backoffMinutes"),)
    return RetryPolicy(tuple(dict.fromkeys(on)), attempts, minutes)
