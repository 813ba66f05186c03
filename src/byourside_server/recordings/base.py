"""The recording store port: where a finished call's audio is kept and read back from.

A worker ``put``s the finished local WAV for a call id and gets a reference back,
which is what the call's ``recording_path`` holds; the API ``open``s a reference
to stream the audio. References name their store: a plain filesystem path is the
local store (the form rows have always had), ``s3://bucket/key`` is the S3 store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Protocol

from byourside_server.errors import ApiError

S3_SCHEME = "s3://"


class RecordingNotFound(Exception):
    """The reference names no stored recording (deleted, or never stored)."""


class RecordingStoreUnavailable(ApiError):
    """The recording store did not answer or refused us; the call itself is intact."""

    token, http_status = "store_error", 503
    default_message = "The recording store is unavailable. Retry shortly."


@dataclass
class RecordingStream:
    """An opened recording: its size when known, its bytes in chunks, and how to let go of it."""

    size: int | None
    chunks: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]


class RecordingStore(Protocol):
    async def put(self, call_id: str, local_path: Path) -> str:
        """Store the finished WAV at ``local_path`` as the recording of ``call_id``; its reference."""

    async def open(self, reference: str) -> RecordingStream:
        """Stream a stored recording (``RecordingNotFound``, ``RecordingStoreUnavailable``)."""

    async def delete(self, reference: str) -> None:
        """Remove a stored recording; one already gone is not an error."""

    async def aclose(self) -> None: ...


def is_s3_reference(reference: str) -> bool:
    return reference.startswith(S3_SCHEME)
