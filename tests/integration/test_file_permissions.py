"""Files holding secrets (the SQLite store with webhook secrets, recordings) are owner-only:
0600 files in 0700 directories, whatever the umask, and an existing world-readable store is tightened."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from byourside_server.settings import Settings
from byourside_server.store.database import open_database
from byourside_server.voice.recorder import StereoRecorder
from support import new_account, open_services


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask():
    """The common default umask: without care, new files would be 0644 and directories 0755."""
    old = os.umask(0o022)
    yield
    os.umask(old)


async def test_sqlite_store_and_its_directory_are_owner_only(tmp_path: Path):
    data_dir = tmp_path / "fresh" / "data"
    db_file = data_dir / "byourside.db"
    services = await open_services(f"sqlite+aiosqlite:///{db_file}", data_dir)
    try:
        await new_account(services)  # an account and its webhook secret
        async with services.db.write() as conn:  # WAL mode: a write creates -wal and -shm
            await conn.execute(text("UPDATE accounts SET name = name"))
        assert mode(data_dir) == 0o700
        for name in ("byourside.db", "byourside.db-wal", "byourside.db-shm"):
            assert (data_dir / name).exists(), name
            assert mode(data_dir / name) == 0o600, name
    finally:
        await services.aclose()


async def test_an_existing_world_readable_store_is_tightened(tmp_path: Path):
    db_file = tmp_path / "old.db"
    db_file.touch()
    db_file.chmod(0o644)
    db = open_database(f"sqlite+aiosqlite:///{db_file}")
    try:
        await db.migrate()
        assert mode(db_file) == 0o600
        assert mode(Path(f"{db_file}-wal")) == 0o600
    finally:
        await db.dispose()


def test_data_dir_is_created_owner_only(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "nested" / "data")
    settings.create_data_dir()
    assert mode(tmp_path / "nested" / "data") == 0o700


def test_recordings_are_owner_only(tmp_path: Path):
    recorder = StereoRecorder(tmp_path / "recordings" / "call.wav")
    silence = np.zeros(160, dtype=np.int16)
    recorder.write(silence, silence)
    recorder.close()
    assert mode(tmp_path / "recordings") == 0o700
    assert mode(tmp_path / "recordings" / "call.wav") == 0o600
