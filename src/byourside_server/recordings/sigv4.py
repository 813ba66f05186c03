"""AWS Signature Version 4 for S3 requests (header signing, path-style URLs).

The algorithm is the published one (AWS "Signature Version 4 signing process"):
a canonical request, a string to sign over its SHA-256, and an HMAC chain from
the secret through date, region and service. Only what the recording store
sends is covered: no query-string presigning, no chunked payload signing.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from typing import Mapping
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def uri_encode_path(path: str) -> str:
    """S3's canonical URI: every byte but the unreserved characters and "/" percent-encoded, once."""
    return quote(path, safe="/-_.~")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret_access_key).encode(), date)
    return _hmac(_hmac(_hmac(key, region), service), "aws4_request")


def sign_headers(
    *,
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str] | None = None,
    payload_sha256: str,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    service: str = "s3",
    now: datetime | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers that sign this request: ``Authorization``, ``x-amz-date``, ``x-amz-content-sha256``
    and ``host`` (plus ``extra_headers``, all signed). ``path`` is the decoded path."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    headers = {"host": host, "x-amz-content-sha256": payload_sha256, "x-amz-date": amz_date}
    headers.update({k.lower(): str(v).strip() for k, v in (extra_headers or {}).items()})
    names = sorted(headers)
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted((query or {}).items())
    )
    canonical_request = "\n".join([
        method.upper(),
        uri_encode_path(path),
        canonical_query,
        "".join(f"{name}:{headers[name]}\n" for name in names),
        ";".join(names),
        payload_sha256,
    ])
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    signature = hmac.new(signing_key(secret_access_key, date, region, service), string_to_sign.encode(),
                         hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers
