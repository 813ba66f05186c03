"""The single exception type raised by the SDK, and the wire-token -> message table.

``map_error(status, body)`` is the published 0.1.0 function, with the same messages:
code written against ``byourside.errors`` keeps working. The server's own ``message``
stays reachable as ``ByoursideError.server_message`` and never replaces ``.message``.
"""

from typing import Any, Mapping, Optional

TEMPORARY_MESSAGE = "Temporary service error. Please retry shortly."

# The 0.1.0 package's messages, word for word, followed by the contract's tokens that
# it had no message for (spec section 5), plus ``internal_error``.
_TOKEN_MESSAGES = {
    "destination_blocked": "That destination is not allowed (premium, IRSF, or unsupported country).",
    "invalid_number": "The destination number is invalid (use full E.164, e.g. +14155550123).",
    "to_required": "A destination number (to) is required.",
    "objective_required": "An objective for the call is required.",
    "caller_id_not_owned": "That caller ID is not a number on your account.",
    "rate_limited": "Rate limit reached. Try again shortly.",
    "over_minute_cap": "Outbound usage limit reached for now.",
    "unauthorized": "Invalid or missing API key.",
    "not_found": "No call found with that id (or it does not belong to your account).",
    "placement_failed": "The call could not be placed (carrier/trunk issue). Try again shortly.",
    "store_error": TEMPORARY_MESSAGE,
    "invalid_request": "The request was not valid.",
    "invalid_fields": "The fields list is not valid: at most 20 items with unique names and type string, boolean or number.",
    "invalid_webhook_url": "The webhook URL must be https:// on a public address.",
    "idempotency_conflict": "This idempotency key was already used with a different request.",
    "call_not_active": "The call is no longer active.",
    "invalid_transfer_to": "The transfer numbers are not valid: one E.164 number or a list of up to 5 distinct ones, "
                           "each a number this server may call (and not the number being called).",
    "invalid_voice": "That voice is not one this server can speak: list them with list_voices().",
    "unsupported_language": "This server cannot speak that language. Its operator can add a realtime model "
                            "(BYS_REALTIME) or a cloud voice (BYS_TTS) with an LLM brain for more languages.",
    "internal_error": TEMPORARY_MESSAGE,
}


def map_error(status: Any, body: Any) -> str:
    """Message for an error response: the token's fixed message; else the temporary-error
    message for a 5xx or status 0; else "Request failed (<token>)."; else
    "Request failed with status <n>."."""
    token = body.get("error", "") if isinstance(body, dict) else ""
    if token and isinstance(token, str) and token in _TOKEN_MESSAGES:
        return _TOKEN_MESSAGES[token]
    if not status or status >= 500:
        return TEMPORARY_MESSAGE
    if token:
        return "Request failed (%s)." % token
    return "Request failed with status %s." % status


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
        map_error(status, body),
        status,
        token or "error",
        server_message=server_message,
        body=body,
        retry_after=retry_after,
        request_id=request_id,
    )
