"""Webhook signatures: ``X-BYS-Signature: t=<unix seconds>,v1=<hex>``.

``hex = HMAC-SHA256(secret, "<t>.<raw body>")`` with the whole secret (including its
``whsec_`` prefix) used as UTF-8 bytes. Several ``v1=`` entries may be present (for
example during secret rotation); the signature is valid if any of them matches.
"""

import hashlib
import hmac
import time
from typing import Any, Optional, Union

SIGNATURE_HEADER = "X-BYS-Signature"
EVENT_ID_HEADER = "X-BYS-Event-Id"
EVENT_HEADER = "X-BYS-Event"
DEFAULT_TOLERANCE = 300

BodyType = Union[bytes, bytearray, memoryview, str]


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError("expected str or bytes")


def _digest(secret: Any, timestamp: str, raw_body: Any) -> str:
    message = timestamp.encode("ascii") + b"." + _to_bytes(raw_body)
    return hmac.new(_to_bytes(secret), message, hashlib.sha256).hexdigest()


def sign_webhook(raw_body: BodyType, secret: Union[str, bytes], timestamp: Optional[int] = None) -> str:
    """Build an ``X-BYS-Signature`` header value for ``raw_body`` (for servers and tests)."""
    t = str(int(time.time() if timestamp is None else timestamp))
    return "t=%s,v1=%s" % (t, _digest(secret, t, raw_body))


def verify_webhook(
    header: Any,
    raw_body: Any,
    secret: Any,
    tolerance: Any = DEFAULT_TOLERANCE,
    now: Optional[float] = None,
) -> bool:
    """True if ``header`` is a valid, fresh signature of ``raw_body`` under ``secret``.

    ``raw_body`` must be the exact bytes received (``str`` is encoded as UTF-8).
    A timestamp more than ``tolerance`` seconds from ``now`` (default: the current
    time) in either direction is rejected. Never raises: bad input returns False.
    """
    try:
        if isinstance(header, (bytes, bytearray)):
            header = bytes(header).decode("utf-8")
        if not isinstance(header, str) or not header.strip():
            return False
        if not secret or not isinstance(secret, (str, bytes, bytearray)):
            return False
        if not isinstance(raw_body, (str, bytes, bytearray, memoryview)):
            return False
        timestamp = None  # type: Optional[str]
        signatures = []  # type: List[str]
        for part in header.split(","):
            key, sep, value = part.strip().partition("=")
            if not sep:
                continue
            key = key.strip()
            value = value.strip()
            if key == "t" and timestamp is None:
                timestamp = value
            elif key == "v1" and value:
                signatures.append(value)
        if timestamp is None or not signatures:
            return False
        if not timestamp or not all(c in "0123456789" for c in timestamp):
            return False
        t = int(timestamp)
        current = time.time() if now is None else float(now)
        if isinstance(tolerance, bool):
            return False
        if abs(current - t) > float(tolerance):
            return False
        expected = _digest(secret, timestamp, raw_body).encode("ascii")
        valid = False
        for signature in signatures:
            try:
                candidate = signature.lower().encode("ascii")
            except UnicodeError:
                continue
            if hmac.compare_digest(expected, candidate):
                valid = True  # keep looping: do not reveal which entry matched
        return valid
    except Exception:
        return False
