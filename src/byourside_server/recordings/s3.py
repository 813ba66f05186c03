"""The S3 recording store: any S3-compatible endpoint (AWS, MinIO, Ceph, R2...) over httpx.

``S3Client`` is the small part of the S3 API the store needs (PUT, streamed GET,
DELETE of one object, path-style URLs), signed with SigV4 (``sigv4.py``). httpx
is already a dependency; boto3/aiobotocore would add about 35 MB of SDK and a
second HTTP stack for three requests.

The recording of call ``c`` is the object ``<BYS_S3_PREFIX><c>.wav`` in
``BYS_S3_BUCKET``; its reference is ``s3://<bucket>/<key>``. Once uploaded, the
worker's local copy is removed: the store is where the recording lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from pathlib import Path
from typing import AsyncIterator
from urllib.parse import urlsplit

import httpx

from byourside_server.recordings.base import (
    S3_SCHEME,
    RecordingNotFound,
    RecordingStoreUnavailable,
    RecordingStream,
    is_s3_reference,
)
from byourside_server.recordings.local import CHUNK_BYTES, LocalRecordingStore
from byourside_server.recordings.sigv4 import EMPTY_SHA256, sign_headers, uri_encode_path


class S3Error(Exception):
    """S3 answered with an error (``status``, S3's ``Code`` when it gave one) or did not answer (status 0)."""

    def __init__(self, status: int, code: str = "") -> None:
        super().__init__(f"S3 request failed: status {status} {code}".strip())
        self.status = status
        self.code = code


class S3Client:
    def __init__(self, endpoint_url: str, region: str, access_key_id: str, secret_access_key: str,
                 *, timeout_seconds: float = 30.0, http: httpx.AsyncClient | None = None) -> None:
        parts = urlsplit(endpoint_url.rstrip("/"))
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        self.base_path = parts.path
        self.host = parts.netloc
        self.region = region
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds))

    def _request(self, method: str, bucket: str, key: str, payload_sha256: str,
                 extra_headers: dict[str, str] | None = None, content: object = None) -> httpx.Request:
        path = f"{self.base_path}/{bucket}/{key}" if key else f"{self.base_path}/{bucket}"
        headers = sign_headers(
            method=method, host=self.host, path=path, payload_sha256=payload_sha256,
            access_key_id=self._access_key_id, secret_access_key=self._secret_access_key,
            region=self.region, extra_headers=extra_headers,
        )
        url = httpx.URL(self.base_url).copy_with(raw_path=_raw_path(path))
        return self._http.build_request(method, url, headers=headers, content=content)

    async def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        try:
            return await self._http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise S3Error(0, type(exc).__name__) from None

    async def put_object(self, bucket: str, key: str, path: Path) -> None:
        """Upload a file, streamed from disk, with its SHA-256 signed (S3 checks it on arrival)."""
        size, digest = await asyncio.to_thread(_size_and_sha256, path)
        request = self._request("PUT", bucket, key, digest, {"content-length": str(size),
                                                            "content-type": "audio/wav"},
                                content=_file_chunks(path))
        response = await self._send(request)
        _raise_for_status(response)

    async def get_object(self, bucket: str, key: str) -> httpx.Response:
        """The object's response, open for streaming (the caller closes it)."""
        response = await self._send(self._request("GET", bucket, key, EMPTY_SHA256), stream=True)
        if response.status_code >= 300:
            await response.aread()
            await response.aclose()
            _raise_for_status(response)
        return response

    async def delete_object(self, bucket: str, key: str) -> None:
        _raise_for_status(await self._send(self._request("DELETE", bucket, key, EMPTY_SHA256)))

    async def create_bucket(self, bucket: str) -> None:
        """Create a bucket (for tests and first set-up); one this account already owns is fine."""
        request = self._request("PUT", bucket, "", EMPTY_SHA256)
        response = await self._send(request)
        if response.status_code == 409 and b"BucketAlreadyOwnedByYou" in response.content:
            return
        _raise_for_status(response)

    async def aclose(self) -> None:
        await self._http.aclose()


def _raw_path(path: str) -> bytes:
    return uri_encode_path(path).encode("ascii")


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 300:
        return
    try:
        body = response.content
    except httpx.ResponseNotRead:
        body = b""
    code = ""
    if b"<Code>" in body:
        code = body.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0].decode("ascii", "replace")[:64]
    raise S3Error(response.status_code, code)


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK_BYTES):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(open, path, "rb")
    try:
        while block := await asyncio.to_thread(handle.read, CHUNK_BYTES):
            yield block
    finally:
        handle.close()


def parse_reference(reference: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``."""
    bucket, _, key = reference[len(S3_SCHEME):].partition("/")
    if not bucket or not key:
        raise RecordingNotFound()
    return bucket, key


class S3RecordingStore:
    """Writes to S3; reads S3 references, and local paths from rows written before it was chosen."""

    def __init__(self, client: S3Client, bucket: str, prefix: str, local: LocalRecordingStore) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.local = local

    async def put(self, call_id: str, local_path: Path) -> str:
        key = f"{self.prefix}{call_id}.wav"
        try:
            await self.client.put_object(self.bucket, key, Path(local_path))
        except S3Error:
            raise RecordingStoreUnavailable() from None
        with contextlib.suppress(OSError):  # stored either way; a copy left behind is not a failed upload
            Path(local_path).unlink(missing_ok=True)
        return f"{S3_SCHEME}{self.bucket}/{key}"

    async def open(self, reference: str) -> RecordingStream:
        if not is_s3_reference(reference):
            return await self.local.open(reference)
        bucket, key = parse_reference(reference)
        try:
            response = await self.client.get_object(bucket, key)
        except S3Error as exc:
            if exc.status == 404:
                raise RecordingNotFound() from None
            raise RecordingStoreUnavailable() from None
        length = response.headers.get("content-length")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for block in response.aiter_bytes(CHUNK_BYTES):
                    yield block
            finally:
                await response.aclose()

        return RecordingStream(size=int(length) if length and length.isdigit() else None, chunks=chunks(),
                               close=response.aclose)

    async def delete(self, reference: str) -> None:
        if not is_s3_reference(reference):
            await self.local.delete(reference)
            return
        try:
            await self.client.delete_object(*parse_reference(reference))
        except S3Error as exc:
            if exc.status != 404:
                raise RecordingStoreUnavailable() from None

    async def aclose(self) -> None:
        await self.client.aclose()
