"""Twilio's request signature (X-Twilio-Signature), as Twilio documents it for webhooks and Media Streams.

The signed string is the full URL Twilio requested (the one we gave it) followed
by every POST parameter, sorted by name, as name and value run together; the
signature is the base64 of its HMAC-SHA1 keyed with the account's Auth Token.
A WebSocket (Media Streams) handshake is signed the same way, with no parameters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    values: dict[str, list[str]] = {}
    for name, value in params:
        values.setdefault(name, []).append(value)
    signed = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_valid(auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str | None) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(twilio_signature(auth_token, url, params), signature)
