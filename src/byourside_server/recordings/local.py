"""The local recording store: WAV files under ``<data_dir>/recordings``, owner-only.

A recording the voice engine already wrote there stays where it is (its path is
the reference, as in every row from before the port); one from elsewhere is
copied in. A reference is a filesystem path, so rows holding older paths are
read as before.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import AsyncIterator

from byourside_server.recordings.base import RecordingNotFound, RecordingStream, is_s3_reference

CHUNK_BYTES = 64 * 1024


class LocalRecordingStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _ensure_directory(self) -> None:
        # Recordings are personal data: owner-only directory and files.
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def put(self, call_id: str, local_path: Path) -> str:
        source = Path(local_path)
        target = self.directory / f"{call_id}.wav"
        if source.resolve() == target.resolve():
            return str(source)
        await asyncio.to_thread(self._copy, source, target)
        return str(target)

    def _copy(self, source: Path, target: Path) -> None:
        self._ensure_directory()
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, CHUNK_BYTES)

    async def open(self, reference: str) -> RecordingStream:
        if is_s3_reference(reference):
            raise RecordingNotFound("an S3 recording, and this process has no S3 store (BYS_RECORDING_STORE)")
        try:
            handle = await asyncio.to_thread(open, reference, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise RecordingNotFound() from None
        size = os.fstat(handle.fileno()).st_size

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while block := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                    yield block
            finally:
                handle.close()

        async def close() -> None:
            handle.close()

        return RecordingStream(size=size, chunks=chunks(), close=close)

    async def delete(self, reference: str) -> None:
        if not is_s3_reference(reference):
            Path(reference).unlink(missing_ok=True)

    async def aclose(self) -> None:
        return None
