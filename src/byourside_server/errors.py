"""Typed errors. Each maps to exactly one API error token (spec section 5) at the HTTP edge.

Code below the API raises these; ``api/errors.py`` turns them into the JSON
envelope ``{"error": token, "message": text}``. Messages never contain secrets,
phone numbers or objectives.
"""

from __future__ import annotations


class CliError(Exception):
    """A command's user-facing error (``byourside ...``): printed without a traceback, exit code 1.

    Here rather than in cli/ so code a command calls (e.g. ``evals.runner.run_cli``) can raise it
    without importing the command line back."""


class ApiError(Exception):
    """An error with a stable wire token and HTTP status."""

    token: str = "internal_error"
    http_status: int = 500
    default_message: str = "Something went wrong on our side. Try again; if it persists, check the server log."

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        self.message = message or self.default_message
        self.retry_after = retry_after
        super().__init__(self.message)


class InvalidRequest(ApiError):
    token, http_status = "invalid_request", 400
    default_message = "The request body is not valid."


class ToRequired(ApiError):
    token, http_status = "to_required", 400
    default_message = "'to' is required: the destination number in E.164 form, e.g. +14155550123."


class ObjectiveRequired(ApiError):
    token, http_status = "objective_required", 400
    default_message = "'objective' is required: say in plain words what the call should achieve."


class InvalidNumber(ApiError):
    token, http_status = "invalid_number", 400
    default_message = "The number is not valid E.164: use '+', the country code and the number, digits only (e.g. +14155550123)."


class InvalidFields(ApiError):
    token, http_status = "invalid_fields", 400
    default_message = "'fields' must be at most 20 items {name, type?, description?} with unique identifier names and type string, boolean or number."


class InvalidVoice(ApiError):
    """(ext) ``voice`` names no voice this deployment speaks (GET /v1/agent/voices lists them)."""

    token, http_status = "invalid_voice", 400
    default_message = "'voice' names no voice this deployment can speak: pick one from GET /v1/agent/voices."


class UnsupportedLanguage(ApiError):
    """(ext) The call's language is one this deployment cannot speak (the offline agent speaks English only)."""

    token, http_status = "unsupported_language", 400
    default_message = ("This deployment cannot conduct a call in that language: set BYS_REALTIME or a cloud voice "
                       "(BYS_TTS) with an LLM brain for more languages.")


class InvalidWebhookUrl(ApiError):
    token, http_status = "invalid_webhook_url", 400
    default_message = "'webhookUrl' must be an https:// URL on a public address."


class InvalidTransferTo(ApiError):
    """(ext) ``transferTo`` is not one E.164 number or a list of up to 5, or a number the guardrails refuse."""

    token, http_status = "invalid_transfer_to", 400
    default_message = ("'transferTo' must be an E.164 number or a list of up to 5 distinct ones, each a number "
                       "this server may call (e.g. \"+14155550123\").")


class DestinationBlocked(ApiError):
    token, http_status = "destination_blocked", 400
    default_message = "Calls to this destination are not allowed (region not enabled, premium-rate, satellite or high-fraud range)."


class CallerIdNotOwned(ApiError):
    token, http_status = "caller_id_not_owned", 403
    default_message = "The caller ID is not a number on this account. Add it with 'byourside numbers add' or omit callerId."


class Unauthorized(ApiError):
    token, http_status = "unauthorized", 401
    default_message = "Missing or invalid API key. Send 'Authorization: Bearer bys_ak_...'; create a key with 'byourside keys create'."


class NotFound(ApiError):
    token, http_status = "not_found", 404
    default_message = "No such call on this account."


class IdempotencyConflict(ApiError):
    token, http_status = "idempotency_conflict", 409
    default_message = "This Idempotency-Key was already used with a different request body. Use a new key for a new call."


class CallNotActive(ApiError):
    token, http_status = "call_not_active", 409
    default_message = "The call has already ended."


class CallActive(ApiError):
    """(ext) ``DELETE /v1/agent/calls/{id}`` of a call that is queued, dialling or live."""

    token, http_status = "call_active", 409
    default_message = ("The call has not ended yet. Cancel it (POST /v1/agent/calls/{id}/cancel) and delete it "
                       "once its status is final.")


class DestinationSuppressed(ApiError):
    """(ext) The number is on the account's do-not-call list."""

    token, http_status = "destination_suppressed", 403
    default_message = ("This number is on the account's do-not-call list. Remove it with "
                       "'DELETE /v1/agent/suppressions/{number}' only if the callee has agreed to be called again.")


class OutsideCallingHours(ApiError):
    """(ext) ``callingHours: "strict"`` and the callee's calling hours are closed now (or at ``scheduledAt``)."""

    token, http_status = "outside_calling_hours", 409
    default_message = ("It is outside the account's calling hours in the callee's time zone. Retry after the "
                       "Retry-After seconds, send a 'scheduledAt' inside the window, or omit callingHours to have "
                       "the call held until the window opens.")


class RateLimited(ApiError):
    token, http_status = "rate_limited", 429
    default_message = "Too many calls for this account right now. Retry after the number of seconds in Retry-After."


class OverMinuteCap(ApiError):
    token, http_status = "over_minute_cap", 429
    default_message = "This account's outbound minute allowance for the month is used up. Raise it with 'byourside accounts limits'."


class PlacementFailed(ApiError):
    token, http_status = "placement_failed", 502
    default_message = "The carrier refused the call. Try again later or check the telephony settings."


class StoreUnavailable(ApiError):
    token, http_status = "store_error", 503
    default_message = "The database is unavailable; nothing was created. Retry shortly."


class InternalError(ApiError):
    token, http_status = "internal_error", 500
