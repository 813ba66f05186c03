"""The single exception type raised by the SDK, and the wire-token -> message table."""

from typing import Any, Mapping, Optional

# Friendly English message for every error token of the contract (spec section 5),
# plus ``internal_error``. The server's own ``message`` stays available as
# ``ByoursideError.server_message`` but is never used as ``.message``.
_MESSAGES = {
    "invalid_request": "The request was not valid.",
    "to_required": "A destination number ('to') is required.",
    "objective_required": "An objective is required.",
    "invalid_number": "The phone number is not valid E.164 (e.g. +14155550123).",
    "invalid_fields": "The fields list is not valid: at most 20 items with unique names and type string, boolean or number.",
    "invalid_webhook_url": "The webhook URL must be https:// on a public address.",
    "destination_blocked": "Calls to this destination are not allowed.",
    "caller_id_not_owned": "The caller ID is not a number on this account.",
    "unauthorized": "Invalid or missing API key.",
    "not_found": "Call not found.",
    "idempotency_conflict": "This idempotency key was already used with a different request.",
    "call_not_active": "The call is no longer active.",
    "rate_limited": "Rate limited: too many calls. Try again shortly.",
    "over_minute_cap": "The account's outbound minute allowance is used up.",
    "placement_failed": "The carrier refused the call. Please try again later.",
    "store_error": "The service is temporarily unavailable (storage). Please try again.",
    "internal_error": "The service is temporarily unavailable. Please try again.",
}

TEMPORARY_MESSAGE = "The service is temporarily unavailable. Please try again."


def friendly_message(token: Optional[str], status: int) -> str:
    """Message for an error response: known token, else temporary (5xx / 0), else generic."""
    if token and token in _MESSAGES:
        return _MESSAGES[token]
    if status == 0 or status >= 500:
        return TEMPORARY_MESSAGE
    if token:
        return "Request failed (%s)." % token
    return "Request failed (HTTP %d)." % status


class ByoursideError(Exception):
    """Every failure the SDK reports.

    ``message``: human-readable text (also ``str(err)``).
    ``status``: HTTP status, ``0`` for network errors, timeouts and local errors.
    ``code``: the wire token (``unauthorized``, ``rate_limited`` ...), ``"error"`` when
    the server sent none, or a local code (``no_api_key``, ``network_error``, ``timeout``).

    Extras (keyword-only, may be ``None``): ``server_message`` (the server's own
    ``message``), ``body`` (the decoded error body), ``retry_after`` (seconds, from the
    ``Retry-After`` header when the transport exposes headers), ``request_id``
    (``X-Request-Id``).
    """

    def __init__(
        self,
        message: str,
        status: int = 0,
        code: Optional[str] = None,
        *,
        server_message: Optional[str] = None,
        body: Any = None,
        retry_after: Optional[float] = None,
        request_id: Optional[str] = None
    ) -> None:
        super(ByoursideError, self).__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.server_message = server_message
        self.body = body
        self.retry_after = retry_after
        self.request_id = request_id

    def __str__(self) -> str:
        return str(self.message)

    def __repr__(self) -> str:
        return "ByoursideError(%r, status=%r, code=%r)" % (self.message, self.status, self.code)

    def __reduce__(self):  # keep status/code across pickling (e.g. multiprocessing)
        return (self.__class__, (self.message, self.status, self.code), dict(self.__dict__))


def error_from_response(
    status: int,
    body: Any,
    headers: Optional[Mapping[str, str]] = None,
    retry_after: Optional[float] = None,
) -> "ByoursideError":
    """Build the error for a non-2xx response (``headers`` keys lower-cased)."""
    token = None
    server_message = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, str) and err:
            token = err
        msg = body.get("message")
        if isinstance(msg, str):
            server_message = msg
    request_id = None
    if headers:
        request_id = headers.get("x-request-id")
    return ByoursideError(
        friendly_message(token, status),
        status,
        token or "error",
        server_message=server_message,
        body=body,
        retry_after=retry_after,
        request_id=request_id,
    )
