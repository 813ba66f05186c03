"""A write cancelled while its statement runs in SQLite's thread leaves no lock behind.

The cancelled task's transaction is rolled back once its statement has finished, and the next writer
gets the write lock at once, instead of failing with "database is locked" after the busy timeout
(what a statement cancelled mid-run used to leave: a connection closed but kept alive by SQLite,
holding its lock, until garbage collection).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from byourside_server.store.database import open_database

# A statement that keeps SQLite's thread busy long enough for the cancellation to land inside it.
SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) FROM c"


@pytest.mark.parametrize("cancels", [1, 2])
async def test_a_write_cancelled_mid_statement_rolls_back_and_frees_the_lock(tmp_path: Path, cancels: int):
    db = open_database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", statement_timeout_seconds=5)
    try:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        started = asyncio.Event()

        async def cancelled_writer() -> None:
            async with db.write() as conn:
                await conn.execute(text("INSERT INTO t (v) VALUES ('cancelled')"))
                started.set()
                await conn.execute(text(SLOW))

        task = asyncio.create_task(cancelled_writer())
        await started.wait()
        await asyncio.sleep(0.01)  # the slow statement is now in aiosqlite's thread
        for _ in range(cancels):
            task.cancel()
            await asyncio.sleep(0)
        with pytest.raises(asyncio.CancelledError):
            await task
        async with db.write() as conn:  # would wait out the busy timeout and fail if the lock had leaked
            await conn.execute(text("INSERT INTO t (v) VALUES ('next')"))
        async with db.read() as conn:
            rows = (await conn.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all()
        assert rows == ["next"]  # the cancelled write was rolled back
    finally:
        await db.dispose()
