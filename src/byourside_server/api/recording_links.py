"""Expiring signed recording URLs (spec section 7).

``recordingUrl`` carries ``?expires=<unix>&token=<hex>`` where the token is
HMAC-SHA256(signing secret, "<call id>.<expires>"), so a recording can be fetched
by anything holding the URL (a browser, an audio player, a webhook receiver)
until it expires, without the account's key. The Bearer key keeps working too.

The secret is ``BYS_SIGNING_SECRET``; without it, one is generated once and kept
in the data directory (set the variable when processes run on several machines).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from pathlib import Path
from typing import Callable

from byourside_server.guardrails.text import parse_ascii_int

_MAX_EXPIRES_DIGITS = 12  # unix seconds until the year 33658
_TOKEN_RE = re.compile(r"[0-9a-f]{64}")


def load_signing_secret(configured: str | None, data_dir: Path) -> bytes:
    if configured:
        return configured.encode()
    path = Path(data_dir) / "signing.key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(32).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as f:
            f.write(value)
        return value


class RecordingLinks:
    def __init__(self, secret: bytes, base_url: str, ttl_seconds: int, now: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.base_url = base_url.rstrip("/")
        self.ttl_seconds = ttl_seconds
        self.now = now

    def _token(self, call_id: str, expires: int) -> str:
        return hmac.new(self.secret, f"{call_id}.{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, call_id: str) -> str:
        expires = int(self.now()) + self.ttl_seconds
        return f"{self.base_url}/v1/agent/calls/{call_id}/recording?expires={expires}&token={self._token(call_id, expires)}"

    def verify(self, call_id: str, expires: str | None, token: str | None) -> bool:
        """True for an unexpired link this server signed. Anything else is False, never an error:
        ``expires`` must be ASCII digits of a plausible length and ``token`` 64 hex digits."""
        when = parse_ascii_int(expires, max_digits=_MAX_EXPIRES_DIGITS)
        if when is None or when < self.now() or token is None or not _TOKEN_RE.fullmatch(token):
            return False
        return hmac.compare_digest(self._token(call_id, when), token)
