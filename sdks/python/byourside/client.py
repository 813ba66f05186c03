"""The API client (spec section 9)."""

import http.client
import json
import os
import time
import urllib.parse
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .errors import TEMPORARY_MESSAGE, ByoursideError, error_from_response
from ._transport import UrllibTransport, lower_headers, parse_retry_after
from ._version import __version__
from .webhooks import verify_webhook

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
USER_AGENT = "byourside-python/" + __version__
TERMINAL_STATUSES = frozenset(["completed", "no_answer", "voicemail", "declined", "failed"])

_CALLS_PATH = "/v1/agent/calls"
_BATCHES_PATH = "/v1/agent/batches"
_SUPPRESSIONS_PATH = "/v1/agent/suppressions"
_DEFAULT_LIMIT = 20
_BACKOFF_BASE = 0.5  # seconds: 0.5, 1, 2, 4, 8, 8, ...
_BACKOFF_CAP = 8.0
_RETRY_AFTER_CAP = 60.0  # never sleep longer than this on a server's Retry-After
_NOT_RETRIED_TOKENS = frozenset(["over_minute_cap"])  # 429 that retrying cannot fix

Transport = Callable[[str, str, Dict[str, str], Optional[str]], Tuple[int, Any]]

_UNSET = object()


def _clamp_limit(limit: Any) -> int:
    """``limit`` as an int clamped to 1..100; non-numeric values fall back to 20."""
    if isinstance(limit, bool):
        return _DEFAULT_LIMIT
    try:
        n = int(limit)
    except (TypeError, ValueError, OverflowError):
        try:
            n = int(float(limit))
        except (TypeError, ValueError, OverflowError):
            return _DEFAULT_LIMIT
    return max(1, min(100, n))


def _backoff(attempt: int) -> float:
    return min(_BACKOFF_CAP, _BACKOFF_BASE * (2 ** attempt))


class Client(object):
    """Client for the Agent Calling API.

    ``api_key``: ``bys_ak_...``; ``None`` reads ``BYS_API_KEY``. An empty key (explicit
    ``""``, or ``None`` with the variable unset/empty) raises ``ByoursideError`` with
    code ``no_api_key``.
    ``base_url``: ``None`` reads ``BYS_BASE_URL``, else ``http://127.0.0.1:8000``
    (a local byourside server). Trailing slashes are trimmed.
    ``transport``: see ``byourside.UrllibTransport`` (default) for the contract.
    ``sleep``: ``sleep(seconds)`` used between polls and retries (default ``time.sleep``).
    ``max_retries`` (extra): retries for 429 / 5xx / network errors; 0 = never retry.
    ``timeout`` (extra): per-request socket timeout of the default transport, seconds.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        transport: Optional[Transport] = None,
        sleep: Optional[Callable[[float], Any]] = None,
        *,
        max_retries: int = 0,
        timeout: Optional[float] = 30.0,
        _monotonic: Optional[Callable[[], float]] = None
    ) -> None:
        if api_key is None:
            api_key = os.environ.get("BYS_API_KEY") or ""
        if not isinstance(api_key, str):
            raise TypeError("api_key must be a string")
        api_key = api_key.strip()
        if not api_key:
            raise ByoursideError(
                "No API key: pass api_key= or set the BYS_API_KEY environment variable.",
                0,
                "no_api_key",
            )
        if base_url is None or not str(base_url).strip():
            base_url = os.environ.get("BYS_BASE_URL") or ""
        base_url = str(base_url).strip().rstrip("/") or DEFAULT_BASE_URL
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError("max_retries must be an integer >= 0")
        self._api_key = api_key
        self.base_url = base_url
        self.max_retries = max_retries
        self.timeout = timeout
        self._transport = transport if transport is not None else UrllibTransport(timeout)  # type: Transport
        self._sleep = sleep if sleep is not None else time.sleep
        self._monotonic = _monotonic if _monotonic is not None else time.monotonic

    def __repr__(self) -> str:
        return "Client(base_url=%r, api_key=%r)" % (self.base_url, self._api_key[:7] + "...")

    @property
    def transport(self) -> Transport:
        return self._transport

    # ------------------------------------------------------------------ calls

    def place_call(
        self,
        to: str,
        objective: str,
        context: Optional[str] = None,
        fields: Optional[List[Mapping[str, Any]]] = None,
        webhook_url: Optional[str] = None,
        caller_id: Optional[str] = None,
        *,
        voice: Optional[str] = None,
        language: Optional[str] = None,
        max_duration_seconds: Optional[int] = None,
        metadata: Optional[Mapping[str, str]] = None,
        idempotency_key: Optional[str] = None,
        voicemail_message: Optional[str] = None,
        transfer_to: Union[str, Sequence[str], None] = None,
        transfer_mode: Optional[str] = None
    ) -> Dict[str, Any]:
        """Place a call; returns the 201 body ``{callId, status, language, languageSource, voice}``.

        ``voicemail_message`` (a byourside extension) is left after the tone when a machine answers.

        ``transfer_to`` (ext): one E.164 number, or a list of up to five tried in order, of people
        the call may be handed to when the callee asks for a person; each passes the same checks as
        ``to`` (``invalid_transfer_to`` otherwise). ``transfer_mode`` (ext): ``"cold"`` (the
        default: connect at once) or ``"warm"`` (the person hears a one-sentence brief first).

        With ``max_retries > 0`` and no ``idempotency_key``, a random key is generated
        so that a retried request can never place a second call.
        """
        payload = {}  # type: Dict[str, Any]
        for key, value in (
            ("to", to),
            ("objective", objective),
            ("context", context),
            ("fields", fields),
            ("webhookUrl", webhook_url),
            ("callerId", caller_id),
            ("voice", voice),
            ("language", language),
            ("maxDurationSeconds", max_duration_seconds),
            ("metadata", metadata),
            ("voicemailMessage", voicemail_message),
            ("transferTo", transfer_to),
            ("transferMode", transfer_mode),
        ):
            if value is not None:
                listed = key == "fields" or (key == "transferTo" and not isinstance(value, str))
                payload[key] = list(value) if listed else value
        if idempotency_key is None and self.max_retries > 0:
            idempotency_key = str(uuid.uuid4())
        return self._request(
            "POST",
            _CALLS_PATH,
            body=payload,
            idempotency_key=idempotency_key,
            retryable=idempotency_key is not None,
        )

    def get_call(self, call_id: str) -> Dict[str, Any]:
        """The call object (spec section 4)."""
        return self._request("GET", self._call_path(call_id))

    def list_calls(
        self,
        limit: Any = _DEFAULT_LIMIT,
        *,
        status: Optional[str] = None,
        cursor: Optional[str] = None
    ) -> List[Dict[str, Any]]:
        """Newest calls first (the ``calls`` array). ``limit`` is clamped to 1..100."""
        page = self.list_calls_page(limit, status=status, cursor=cursor)
        calls = page.get("calls") if isinstance(page, dict) else None
        return calls if isinstance(calls, list) else []

    def list_calls_page(
        self,
        limit: Any = _DEFAULT_LIMIT,
        status: Optional[str] = None,
        cursor: Optional[str] = None,
    ) -> Dict[str, Any]:
        """The whole page ``{"calls": [...], "nextCursor": "..." | None}``."""
        query = [("limit", str(_clamp_limit(limit)))]
        if status is not None:
            query.append(("status", str(status)))
        if cursor is not None:
            query.append(("cursor", str(cursor)))
        return self._request("GET", _CALLS_PATH + "?" + urllib.parse.urlencode(query))

    def get_usage(self, start: Optional[str] = None, end: Optional[str] = None) -> Dict[str, Any]:
        """(ext) Calls and minutes by day and final status from ``start`` to ``end`` (``YYYY-MM-DD``,
        UTC, both included; default: this month so far), and this month's cap, used, reserved and left."""
        query = [(name, str(value)) for name, value in (("from", start), ("to", end)) if value is not None]
        return self._request("GET", "/v1/agent/usage" + ("?" + urllib.parse.urlencode(query) if query else ""))

    def list_voices(self) -> Dict[str, Any]:
        """(ext) The voices this deployment can speak: ``{"voices": [{"name", "provider", "languages",
        "gender"}], "default", "aliases"}``. A call's ``voice`` may name one of them or an alias
        (``alloy``, ``echo``, ...); anything else is refused with ``invalid_voice``."""
        return self._request("GET", "/v1/agent/voices")

    def cancel_call(self, call_id: str) -> Dict[str, Any]:
        """Cancel or hang up a call (a terminal call answers 409 ``call_not_active``)."""
        return self._request("POST", self._call_path(call_id) + "/cancel")

    def delete_call(self, call_id: str) -> Dict[str, Any]:
        """(ext) Erase an ended call's personal data (transcript, recording, summary, extracted values;
        numbers masked). Idempotent: the same erased call every time. A running call answers 409
        ``call_active``; cancel it first."""
        return self._request("DELETE", self._call_path(call_id))

    # (ext) batches and the do-not-call list

    def create_batch(
        self,
        calls: List[Mapping[str, Any]],
        defaults: Optional[Mapping[str, Any]] = None,
        *,
        webhook_url: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None
    ) -> Dict[str, Any]:
        """(ext) Place many calls: each row of ``calls`` is ``defaults`` with its own keys over them
        (``to``, ``context``, ``metadata``, ``scheduledAt`` ...). Returns the batch with
        ``rejectedRows`` (``[{"row", "error", "message"}]``); ``webhook_url`` receives ``batch.finished``.
        Never retried: a second attempt could queue the batch twice."""
        payload = {"calls": [dict(row) for row in calls]}  # type: Dict[str, Any]
        if defaults is not None:
            payload["defaults"] = dict(defaults)
        if webhook_url is not None:
            payload["webhookUrl"] = webhook_url
        if metadata is not None:
            payload["metadata"] = dict(metadata)
        return self._request("POST", _BATCHES_PATH, body=payload, retryable=False)

    def get_batch(self, batch_id: str) -> Dict[str, Any]:
        """(ext) A batch's progress: ``status``, ``total``, ``counts`` of its calls by status."""
        return self._request("GET", _BATCHES_PATH + "/" + urllib.parse.quote(str(batch_id), safe=""))

    def list_batches(self, limit: Any = _DEFAULT_LIMIT) -> List[Dict[str, Any]]:
        """(ext) The newest batches."""
        page = self._request("GET", _BATCHES_PATH + "?limit=" + str(_clamp_limit(limit)))
        batches = page.get("batches") if isinstance(page, dict) else None
        return batches if isinstance(batches, list) else []

    def cancel_batch(self, batch_id: str) -> Dict[str, Any]:
        """(ext) End a batch's waiting calls (``canceled``); calls on the line finish."""
        return self._request("POST", _BATCHES_PATH + "/" + urllib.parse.quote(str(batch_id), safe="") + "/cancel")

    def add_suppressions(self, numbers: List[str], note: Optional[str] = None) -> Dict[str, Any]:
        """(ext) Put E.164 numbers on the account's do-not-call list: ``{"added", "alreadyListed"}``."""
        payload = {"numbers": list(numbers)}  # type: Dict[str, Any]
        if note is not None:
            payload["note"] = note
        return self._request("POST", _SUPPRESSIONS_PATH, body=payload)

    def remove_suppression(self, number: str) -> Dict[str, Any]:
        """(ext) Take a number off the do-not-call list (404 ``not_found`` if it is not on it)."""
        return self._request("DELETE", _SUPPRESSIONS_PATH + "/" + urllib.parse.quote(str(number), safe=""))

    def list_suppressions(self, limit: Any = _DEFAULT_LIMIT, cursor: Optional[str] = None) -> Dict[str, Any]:
        """(ext) One page of the do-not-call list: ``{"suppressions": [...], "nextCursor"}``."""
        query = [("limit", str(_clamp_limit(limit)))] + ([("cursor", str(cursor))] if cursor is not None else [])
        return self._request("GET", _SUPPRESSIONS_PATH + "?" + urllib.parse.urlencode(query))

    def wait_for_call(
        self,
        call_id: str,
        timeout: Optional[float] = 180,
        interval: float = 3,
        on_status: Optional[Callable[[Dict[str, Any]], Any]] = None,
    ) -> Dict[str, Any]:
        """Poll until the call is terminal and return it.

        Raises ``ByoursideError(code="timeout", status=0)`` when the next poll would
        fall after ``start + timeout`` (``timeout=0``: exactly one poll; ``None``: no
        deadline). ``on_status(call)`` runs whenever the status differs from the
        previous poll's, the first poll included.
        """
        interval = max(0.0, float(interval))
        start = self._monotonic()
        limit = None if timeout is None else float(timeout)
        deadline = None if limit is None else start + limit
        previous = _UNSET  # type: Any
        while True:
            call = self.get_call(call_id)
            status = call.get("status") if isinstance(call, dict) else None
            if on_status is not None and status != previous:
                on_status(call)
            previous = status
            if status in TERMINAL_STATUSES:
                return call
            if limit is not None and (limit <= 0 or self._monotonic() + interval > deadline):
                raise ByoursideError(
                    "Timed out waiting for call %s to finish (last status: %s)." % (call_id, status),
                    0,
                    "timeout",
                    body=call,
                )
            self._sleep(interval)

    # Convenience: the module-level function, also reachable from a client.
    verify_webhook = staticmethod(verify_webhook)

    # -------------------------------------------------------------- internals

    @staticmethod
    def _call_path(call_id: Any) -> str:
        if call_id is None or str(call_id) == "":
            raise ByoursideError("A call id is required.", 0, "invalid_request")
        return _CALLS_PATH + "/" + urllib.parse.quote(str(call_id), safe="")

    def _headers(self, has_body: bool, idempotency_key: Optional[str]) -> Dict[str, str]:
        headers = {
            "Authorization": "Bearer " + self._api_key,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if has_body:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = str(idempotency_key)
        return headers

    def _last_headers(self) -> Optional[Dict[str, str]]:
        try:
            return lower_headers(getattr(self._transport, "last_headers", None))
        except Exception:
            return None

    def _request(
        self,
        method: str,
        path: str,
        body: Optional[Dict[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        retryable: bool = True,
    ) -> Any:
        url = self.base_url + path
        data = None if body is None else json.dumps(body)
        headers = self._headers(data is not None, idempotency_key)
        attempts = 1 + (self.max_retries if retryable else 0)
        attempt = 0
        while True:
            attempt += 1
            try:
                status, parsed = self._transport(method, url, dict(headers), data)
            except ByoursideError:
                raise
            except (OSError, http.client.HTTPException) as exc:  # URLError, socket.timeout ...
                error = ByoursideError(TEMPORARY_MESSAGE, 0, "network_error")
                if attempt >= attempts:
                    raise error from exc
                self._sleep(_backoff(attempt - 1))
                continue
            try:
                status = int(status)
            except (TypeError, ValueError):
                status = 0
            if 200 <= status < 300:
                return parsed
            response_headers = self._last_headers()
            retry_after = parse_retry_after(response_headers.get("retry-after")) if response_headers else None
            error = error_from_response(status, parsed, response_headers, retry_after)
            transient = status == 0 or status == 429 or status >= 500
            if not transient or error.code in _NOT_RETRIED_TOKENS or attempt >= attempts:
                raise error
            delay = _backoff(attempt - 1) if retry_after is None else min(retry_after, _RETRY_AFTER_CAP)
            self._sleep(delay)
