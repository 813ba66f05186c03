"""Password hashing for dashboard users: stdlib ``hashlib.scrypt`` (memory-hard).

Parameters: N = 2**15, r = 8, p = 1, a 16-byte random salt per password, a 32-byte
derived key. scrypt needs 128 * N * r bytes of memory, here 32 MiB per hash, which
is what makes guessing on GPUs expensive; one hash takes on the order of 100 ms on
one core. The parameters are stored with each hash
(``scrypt$<log2 N>$<r>$<p>$<salt b64>$<key b64>``), so raising them later leaves old
hashes verifiable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

LOG2_N = 15
BLOCK_SIZE_R = 8
PARALLELISM_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_LENGTH = 10
MAX_LENGTH = 200  # bounds the work one request can ask of scrypt's input hashing
_MAX_LOG2_N = 20


class WeakPassword(ValueError):
    pass


def check_password_rules(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"Use at most {MAX_LENGTH} characters.")


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p,
                          maxmem=256 * n * r * p, dklen=KEY_BYTES)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, LOG2_N, BLOCK_SIZE_R, PARALLELISM_P)
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"scrypt${LOG2_N}${BLOCK_SIZE_R}${PARALLELISM_P}${b64(salt)}${b64(key)}"


def verify_password(password: str, stored: str | None) -> bool:
    """True when ``password`` matches ``stored``; False for no hash, a malformed one or a too-long password."""
    if not stored or len(password) > MAX_LENGTH:
        return False
    try:
        scheme, log2_n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt" or not (1 <= int(log2_n) <= _MAX_LOG2_N):
            return False
        expected = base64.b64decode(key)
        actual = _derive(password, base64.b64decode(salt), int(log2_n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def spend_like_a_check(password: str) -> None:
    """Do the work of a real check, so an unknown email answers as slowly as a wrong password."""
    _derive(password[:MAX_LENGTH], b"\0" * SALT_BYTES, LOG2_N, BLOCK_SIZE_R, PARALLELISM_P)
