"""HTTP digest authentication for SIP (RFC 3261 section 22, RFC 8760 SHA-256).

A trunk answers an INVITE with 401 (WWW-Authenticate) or 407
(Proxy-Authenticate); we answer the challenge once with the configured
credentials. ``qop=auth`` is used when offered; ``auth-int`` is not.
"""

from __future__ import annotations

import hashlib
import re
import secrets

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


class DigestError(ValueError):
    pass


def parse_challenge(header: str) -> dict[str, str]:
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestError(f"unsupported auth scheme {scheme!r}")
    return {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(rest)}


def _hash_for(algorithm: str):
    name = algorithm.upper().removesuffix("-SESS")
    if name == "MD5":
        return lambda s: hashlib.md5(s.encode()).hexdigest()
    if name in ("SHA-256", "SHA256"):
        return lambda s: hashlib.sha256(s.encode()).hexdigest()
    raise DigestError(f"unsupported digest algorithm {algorithm!r}")


def authorization(
    challenge: dict[str, str], method: str, uri: str, username: str, password: str, cnonce: str | None = None
) -> str:
    """The Authorization / Proxy-Authorization value answering ``challenge``."""
    realm, nonce = challenge.get("realm", ""), challenge.get("nonce")
    if not nonce:
        raise DigestError("challenge without nonce")
    algorithm = challenge.get("algorithm", "MD5")
    h = _hash_for(algorithm)
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    cnonce = cnonce or secrets.token_hex(8)
    ha1 = h(f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in qops:
        nc = "00000001"
        response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        parts += [f'response="{response}"', "qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    else:
        parts.append(f'response="{h(f"{ha1}:{nonce}:{ha2}")}"')
    parts.append(f"algorithm={algorithm}")
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(parts)
