"""Telnyx's webhook signature (API v2): Ed25519 over ``{telnyx-timestamp}|{raw body}``.

Telnyx signs with its key pair; we verify with the account's public key (base64, Mission Control:
Keys & Credentials, Public Key) and refuse a timestamp more than five minutes away from our clock.
"""

from __future__ import annotations

import base64
import binascii

TOLERANCE_SECONDS = 300


def signature_valid(public_key_b64: str, timestamp: str | None, body: bytes, signature_b64: str | None,
                    now: float) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not timestamp or not signature_b64 or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
        key.verify(base64.b64decode(signature_b64), timestamp.encode() + b"|" + body)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True
