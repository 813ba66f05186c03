"""HTTP transport.

A transport is any callable ``transport(method, url, headers, body) -> (status,
parsed_json)``: ``body`` is a JSON string or ``None``; ``parsed_json`` is the decoded
response body, or ``None`` when it is empty or not JSON. Non-2xx responses are
*returned* (not raised); connection problems are raised (``OSError`` and friends)
and the client turns them into ``ByoursideError(code="network_error")``.

Optionally, a transport may expose ``last_headers``: a mapping of the most recent
response's headers (read by the client right after each call, on the same thread).
The client uses it to honour ``Retry-After`` when retrying and to fill
``ByoursideError.request_id``. Transports without it get exponential backoff.
"""

import email.utils
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Dict, Mapping, Optional, Tuple


def parse_json(raw: Any) -> Any:
    """Decode a response body; ``None`` when empty or not valid JSON."""
    if raw is None:
        return None
    if isinstance(raw, (bytes, bytearray)):
        text = bytes(raw).decode("utf-8", "replace")
    else:
        text = str(raw)
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def lower_headers(headers: Any) -> Optional[Dict[str, str]]:
    """Normalise a header mapping (or ``http.client.HTTPMessage``) to lower-case keys."""
    if headers is None:
        return None
    try:
        items = headers.items()
    except AttributeError:
        return None
    out = {}  # type: Dict[str, str]
    for key, value in items:
        k = str(key).lower()
        if k not in out:  # first occurrence wins for duplicated headers
            out[k] = str(value)
    return out


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """``Retry-After`` as seconds (delta-seconds or HTTP-date), ``None`` if unusable."""
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if parsed is None:
            return None
        try:
            seconds = parsed.timestamp() - (time.time() if now is None else now)
        except (OverflowError, ValueError, OSError):
            return None
        return max(0.0, seconds)
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return None
    return seconds


class UrllibTransport(object):
    """The default transport, built on ``urllib.request`` (standard library only).

    ``timeout`` is the socket timeout in seconds for each request. After every
    response, ``last_headers`` holds its headers (lower-cased keys; per thread).
    """

    def __init__(self, timeout: Optional[float] = 30.0) -> None:
        self.timeout = timeout
        self._local = threading.local()

    @property
    def last_headers(self) -> Optional[Dict[str, str]]:
        return getattr(self._local, "headers", None)

    def __call__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Optional[str],
    ) -> Tuple[int, Any]:
        self._local.headers = None
        data = None
        if body is not None:
            data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        request = urllib.request.Request(url, data=data, headers=dict(headers or {}), method=method)
        kwargs = {}  # type: Dict[str, Any]
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        try:
            response = urllib.request.urlopen(request, **kwargs)
        except urllib.error.HTTPError as exc:  # non-2xx: read the error body
            status = exc.code
            response_headers = exc.headers
            try:
                raw = exc.read()
            except Exception:  # body unreadable: still report the status
                raw = b""
            finally:
                try:
                    exc.close()
                except Exception:
                    pass
        else:
            with response:
                status = response.getcode()
                response_headers = response.headers
                raw = response.read()
        self._local.headers = lower_headers(response_headers)
        return status, parse_json(raw)
