"""SigV4 signing reproduces AWS's published S3 example ("Signature Calculations for the Authorization
Header: Transferring Payload in a Single Chunk", GET Object), byte for byte."""

from __future__ import annotations

from datetime import datetime, timezone

from byourside_server.recordings.sigv4 import EMPTY_SHA256, sign_headers, uri_encode_path


def test_the_published_get_object_example():
    headers = sign_headers(
        method="GET", host="examplebucket.s3.amazonaws.com", path="/test.txt", payload_sha256=EMPTY_SHA256,
        access_key_id="AKIAIOSFODNN7EXAMPLE", secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        region="us-east-1", now=datetime(2013, 5, 24, tzinfo=timezone.utc), extra_headers={"Range": "bytes=0-9"},
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
    assert headers["x-amz-date"] == "20130524T000000Z"


def test_keys_are_encoded_once_with_slashes_kept():
    assert uri_encode_path("/b/calls/a b+c=~(1).wav") == "/b/calls/a%20b%2Bc%3D~%281%29.wav"
