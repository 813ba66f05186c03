"""The SigV4 S3 client and the S3 recording store against a real S3-compatible server (moto, signatures checked)."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import pytest

from byourside_server.recordings import RecordingNotFound, RecordingStoreUnavailable, keep_recording
from byourside_server.recordings.local import LocalRecordingStore
from byourside_server.recordings.s3 import S3Client, S3Error, S3RecordingStore


def _client(server, secret: str | None = None) -> S3Client:
    return S3Client(server.endpoint_url, server.region, server.access_key_id, secret or server.secret_access_key)


def _wav(path: Path, seconds: float = 0.5) -> bytes:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(os.urandom(int(8000 * seconds) * 4))
    return path.read_bytes()


async def _read(client: S3Client, bucket: str, key: str) -> bytes:
    response = await client.get_object(bucket, key)
    try:
        return await response.aread()
    finally:
        await response.aclose()


async def test_put_get_delete_round_trip(s3_server, tmp_path):
    audio = _wav(tmp_path / "a.wav")
    client = _client(s3_server)
    key = "calls/odd name+chars=~(1).wav"  # signed and sent with every reserved character encoded once
    try:
        await client.put_object(s3_server.bucket, key, tmp_path / "a.wav")
        assert await _read(client, s3_server.bucket, key) == audio
        await client.delete_object(s3_server.bucket, key)
        with pytest.raises(S3Error) as missing:
            await client.get_object(s3_server.bucket, key)
        assert missing.value.status == 404
    finally:
        await client.aclose()


async def test_a_wrong_secret_is_refused(s3_server, tmp_path):
    _wav(tmp_path / "a.wav")
    good, bad = _client(s3_server), _client(s3_server, secret="not-the-secret")
    try:
        await good.put_object(s3_server.bucket, "calls/kept.wav", tmp_path / "a.wav")
        for attempt in (
            bad.put_object(s3_server.bucket, "calls/forged.wav", tmp_path / "a.wav"),
            bad.get_object(s3_server.bucket, "calls/kept.wav"),
            bad.delete_object(s3_server.bucket, "calls/kept.wav"),
        ):
            with pytest.raises(S3Error) as refused:
                await attempt
            assert refused.value.status == 403 and refused.value.code == "SignatureDoesNotMatch"
        with pytest.raises(S3Error) as absent:  # the forged upload stored nothing
            await good.get_object(s3_server.bucket, "calls/forged.wav")
        assert absent.value.status == 404
        assert await _read(good, s3_server.bucket, "calls/kept.wav")  # nor did the forged delete remove anything
    finally:
        await good.aclose()
        await bad.aclose()


async def test_store_uploads_streams_and_removes_the_local_copy(s3_server, tmp_path):
    local = tmp_path / "recordings" / "call_1.wav"
    local.parent.mkdir()
    audio = _wav(local, seconds=3)  # larger than one stream chunk
    store = S3RecordingStore(_client(s3_server), s3_server.bucket, "calls/", LocalRecordingStore(tmp_path / "rec"))
    try:
        reference = await store.put("call_1", local)
        assert reference == f"s3://{s3_server.bucket}/calls/call_1.wav"
        assert not local.exists()
        stream = await store.open(reference)
        assert stream.size == len(audio)
        assert b"".join([chunk async for chunk in stream.chunks]) == audio
        await store.delete(reference)
        with pytest.raises(RecordingNotFound):
            await store.open(reference)
        await store.delete(reference)  # already gone: not an error
    finally:
        await store.aclose()


async def test_an_unreachable_store_fails_typed_and_the_call_keeps_no_recording(s3_server, tmp_path):
    local = tmp_path / "call_2.wav"
    _wav(local)
    dead = S3Client("http://127.0.0.1:9", s3_server.region, s3_server.access_key_id, s3_server.secret_access_key)
    store = S3RecordingStore(dead, s3_server.bucket, "calls/", LocalRecordingStore(tmp_path / "rec"))
    try:
        with pytest.raises(RecordingStoreUnavailable):
            await store.put("call_2", local)
        assert await keep_recording(store, "call_2", str(local), retry_delays=(0, 0)) is None
        assert local.exists()  # left for an operator to recover
    finally:
        await store.aclose()
