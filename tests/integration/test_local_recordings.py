"""The local recording store: today's files under the data dir, owner-only, and older rows' paths read as before."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from byourside_server.recordings import LocalRecordingStore, RecordingNotFound, keep_recording


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_wav_from_elsewhere_is_copied_in_owner_only(tmp_path):
    source = tmp_path / "line" / "x.wav"
    source.parent.mkdir()
    source.write_bytes(b"RIFF fake audio")
    store = LocalRecordingStore(tmp_path / "data" / "recordings")
    reference = await keep_recording(store, "call_9", str(source))
    assert reference == str(tmp_path / "data" / "recordings" / "call_9.wav")
    assert _mode(tmp_path / "data" / "recordings") == 0o700 and _mode(Path(reference)) == 0o600
    stream = await store.open(reference)
    assert stream.size == len(b"RIFF fake audio")
    assert b"".join([c async for c in stream.chunks]) == b"RIFF fake audio"
    await store.delete(reference)
    with pytest.raises(RecordingNotFound):
        await store.open(reference)


async def test_a_wav_already_in_the_store_stays_where_the_line_wrote_it(tmp_path):
    store = LocalRecordingStore(tmp_path / "recordings")
    (tmp_path / "recordings").mkdir()
    written = tmp_path / "recordings" / "call_1.wav"
    written.write_bytes(b"RIFF")
    assert await keep_recording(store, "call_1", str(written)) == str(written)
    assert written.exists()


async def test_no_store_or_no_recording_keeps_the_row_as_before(tmp_path):
    assert await keep_recording(None, "c", "/some/old/path.wav") == "/some/old/path.wav"
    assert await keep_recording(LocalRecordingStore(tmp_path), "c", None) is None


async def test_an_s3_reference_is_not_found_without_an_s3_store(tmp_path):
    with pytest.raises(RecordingNotFound):
        await LocalRecordingStore(tmp_path).open("s3://bucket/calls/c.wav")
