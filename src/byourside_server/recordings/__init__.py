"""Where call recordings live: the ``RecordingStore`` port and its two adapters.

``local`` (files under ``<data_dir>/recordings``) serves a single machine; ``s3``
(any S3-compatible endpoint) lets any API process serve what any worker recorded.
Chosen by ``BYS_RECORDING_STORE`` (docs/configuration.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import structlog

from byourside_server.errors import CliError
from byourside_server.recordings.base import (
    RecordingNotFound,
    RecordingStore,
    RecordingStoreUnavailable,
    RecordingStream,
    is_s3_reference,
)
from byourside_server.recordings.local import LocalRecordingStore

if TYPE_CHECKING:
    from byourside_server.settings import Settings

__all__ = [
    "LocalRecordingStore", "RecordingNotFound", "RecordingStore", "RecordingStoreUnavailable", "RecordingStream",
    "build_recording_store", "is_s3_reference", "keep_recording",
]

log = structlog.get_logger(__name__)

# Seconds before each retry of an upload that failed; after the last, the call ends without a recording.
UPLOAD_RETRY_DELAYS = (1.0, 3.0, 10.0)

_S3_REQUIRED = (
    ("s3_endpoint_url", "BYS_S3_ENDPOINT_URL"),
    ("s3_bucket", "BYS_S3_BUCKET"),
    ("s3_access_key_id", "BYS_S3_ACCESS_KEY_ID"),
    ("s3_secret_access_key", "BYS_S3_SECRET_ACCESS_KEY"),
)


class RecordingStoreSettingsMissing(CliError):
    """``BYS_RECORDING_STORE=s3`` without a setting it needs; raised when the process starts."""


def build_recording_store(settings: Settings) -> RecordingStore:
    local = LocalRecordingStore(settings.data_dir / "recordings")
    if settings.recording_store == "local":
        return local
    missing = [env for name, env in _S3_REQUIRED if not getattr(settings, name)]
    if missing:
        raise RecordingStoreSettingsMissing(f"BYS_RECORDING_STORE=s3 needs {', '.join(missing)} to be set.")
    from byourside_server.recordings.s3 import S3Client, S3RecordingStore

    client = S3Client(settings.s3_endpoint_url, settings.s3_region, settings.s3_access_key_id,
                      settings.s3_secret_access_key)
    return S3RecordingStore(client, settings.s3_bucket, settings.s3_prefix, local)


async def keep_recording(store: RecordingStore | None, call_id: str, local_path: str | None,
                         retry_delays: Sequence[float] = UPLOAD_RETRY_DELAYS) -> str | None:
    """Put a finished call's recording into the store: the reference for its ``recording_path``.

    Without a store the local path is kept as it is. A failed upload is retried after each
    of ``retry_delays``; then the call goes on without a recording (None), and the local
    file stays where the line wrote it for an operator to recover.
    """
    if store is None or local_path is None:
        return local_path
    for attempt, delay in enumerate((*retry_delays, None)):
        try:
            return await store.put(call_id, Path(local_path))
        except (RecordingStoreUnavailable, OSError) as exc:
            if delay is None:
                log.error("recording_not_stored", call_id=call_id, attempts=attempt + 1, error=type(exc).__name__)
                return None
            log.warning("recording_store_retrying", call_id=call_id, attempt=attempt + 1, error=type(exc).__name__)
            await asyncio.sleep(delay)
    return None
