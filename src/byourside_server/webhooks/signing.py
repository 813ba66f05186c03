"""``X-BYS-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]``.

``hex = HMAC-SHA256(secret, "<t>.<raw body>")`` with the whole ``whsec_`` secret as
UTF-8 bytes (the SDKs' ``verify_webhook`` checks exactly this). After a secret
rotation the previous secret also signs, as a second ``v1=`` entry, until the
grace period ends, so receivers can switch secrets without dropping events.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta

from byourside_server import __version__

SIGNATURE_HEADER = "X-BYS-Signature"
EVENT_ID_HEADER = "X-BYS-Event-Id"
EVENT_HEADER = "X-BYS-Event"
USER_AGENT = f"byourside-webhooks/{__version__}"
DEFAULT_TOLERANCE_SECONDS = 300


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """The header value signing ``body`` with every secret in ``secrets`` (current first)."""
    if not secrets:
        raise ValueError("at least one signing secret is needed")
    return ",".join([f"t={timestamp}", *(f"v1={_digest(s, timestamp, body)}" for s in secrets)])


def signing_secrets(
    current: str, previous: str | None, rotated_at: datetime | None, now: datetime, grace_seconds: float
) -> list[str]:
    """The secrets to sign with now: the current one, plus the previous one during the grace period."""
    secrets = [current]
    if previous and rotated_at is not None and now < rotated_at + timedelta(seconds=grace_seconds):
        secrets.append(previous)
    return secrets


def verify(header: str, body: bytes, secrets: Sequence[str], now: float, tolerance: float = DEFAULT_TOLERANCE_SECONDS) -> bool:
    """True if any ``v1`` entry matches any of ``secrets`` and ``t`` is within ``tolerance`` of ``now``.

    Used by ``byourside webhooks listen``; receivers should use the SDK's ``verify_webhook``.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t" and timestamp is None and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value.lower())
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance:
        return False
    valid = False
    for secret in secrets:
        expected = _digest(secret, timestamp, body)
        for candidate in candidates:
            if hmac.compare_digest(expected.encode(), candidate.encode("ascii", "replace")):
                valid = True
    return valid
