"""Engine, transactions and migrations for SQLite and PostgreSQL.

``Database.write()`` opens a write transaction (``BEGIN IMMEDIATE`` on SQLite so
concurrent writers queue on the lock instead of failing half-way); ``read()`` a
plain one. Connectivity failures surface as ``StoreUnavailable`` (503
``store_error``) so callers never see driver exceptions.
"""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, TypeVar

import structlog
from sqlalchemy import event, inspect, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from byourside_server.errors import StoreUnavailable

log = structlog.get_logger(__name__)
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest Alembic revision; a test checks it matches migrations/versions. Lets start-up
# skip importing Alembic when the schema is already current.
SCHEMA_HEAD = "0013"
_OUTAGE_ERRORS = (OperationalError, InterfaceError, PoolTimeout, OSError, asyncio.TimeoutError)
# PostgreSQL SQLSTATEs that mean "the store cannot serve now", not "this request is wrong":
# class 08 (connection exceptions), class 57 (statement timeout or cancel, shutdown, starting up),
# 53300 (too many connections).
_OUTAGE_SQLSTATE_PREFIXES = ("08", "57", "53300")
# The client gives up on a statement this long after the server should have cancelled it itself,
# so a live but slow server answers with its own clean error and only a frozen one hits the client timeout.
_CLIENT_TIMEOUT_MARGIN_SECONDS = 1.0


@contextmanager
def _outages_as_unavailable() -> Iterator[None]:
    """The store's connectivity failures as ``StoreUnavailable`` (503 ``store_error``); other errors as they are."""
    try:
        yield
    except StoreUnavailable:
        raise
    except BaseException as exc:
        if _is_outage(exc):
            log.warning("store_unavailable", error=type(exc).__name__)
            raise StoreUnavailable() from exc
        raise


async def _run_to_end(step: Awaitable[T]) -> T:
    """Await ``step`` to its end even if this task is cancelled meanwhile; the cancellation is raised after."""
    task = asyncio.ensure_future(step)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True  # this task was cancelled: the step runs on, the cancellation waits for it
    if cancelled:
        raise asyncio.CancelledError()
    return task.result()


class _StepsRunToEnd:
    """A write connection on SQLite whose statements run to their end (see ``_sqlite_write_transaction``)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return await _run_to_end(self._conn.execute(*args, **kwargs))

    async def exec_driver_sql(self, *args: Any, **kwargs: Any) -> Any:
        return await _run_to_end(self._conn.exec_driver_sql(*args, **kwargs))

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await _run_to_end(self._conn.run_sync(fn, *args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError):
        return False
    if isinstance(exc, _OUTAGE_ERRORS):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return bool(exc.connection_invalidated) or sqlstate.startswith(_OUTAGE_SQLSTATE_PREFIXES)


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name  # "sqlite" | "postgresql"
        self._write_engine = engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else engine
        # No BEGIN: SQLite's module runs each statement in its own implicit transaction; PostgreSQL
        # in autocommit sends the statement alone.
        self._query_engine = (engine.execution_options(sqlite_begin=None) if self.is_sqlite
                              else engine.execution_options(isolation_level="AUTOCOMMIT"))
        # SQLite has one writer at a time. Writers of this process queue here, in order, instead of
        # spinning in SQLite's busy handler (sleep-and-retry with growing back-off), which under load
        # gave multi-second tails; other processes still wait on the busy timeout.
        self._sqlite_writer = asyncio.Lock() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        if self._sqlite_writer is None:
            async with self._transaction(self._write_engine) as conn:
                yield conn
            return
        async with self._sqlite_writer:
            async with self._sqlite_write_transaction() as conn:
                yield conn

    @asynccontextmanager
    async def _sqlite_write_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction on SQLite whose every step runs to its end, even when the task is cancelled.

        A statement cancelled while it runs in aiosqlite's thread leaves SQLAlchemy closing a
        connection whose statement was never finalized: SQLite keeps such a connection open as a
        "zombie", holding its write lock, and every later writer waits out the busy timeout until the
        garbage collector frees it. So each step here (begin, statements, commit or rollback, close)
        finishes first, and the cancellation takes effect between steps: a cancelled write rolls back.
        """
        conn = self._write_engine.connect()
        with _outages_as_unavailable():
            await _run_to_end(conn.start())
            try:
                await _run_to_end(conn.begin())
                yield _StepsRunToEnd(conn)  # type: ignore[misc]
                await _run_to_end(conn.commit())
            except BaseException:
                if conn.in_transaction():
                    await _run_to_end(conn.rollback())
                raise
            finally:
                await _run_to_end(conn.close())

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._transaction(self.engine) as conn:
            yield conn

    @asynccontextmanager
    async def query(self) -> AsyncIterator[AsyncConnection]:
        """A connection for ONE read statement, sent without BEGIN and COMMIT around it.

        A single statement sees one consistent snapshot on both stores by itself, so the
        transaction ``read()`` opens only adds round trips (BEGIN and COMMIT, each a wake-up of
        the database process or of aiosqlite's thread): the hot reads (a call, a key) use this.
        Use ``read()`` for several statements that must agree with each other.
        """
        with _outages_as_unavailable():
            async with self._query_engine.connect() as conn:
                yield conn

    @asynccontextmanager
    async def _transaction(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        with _outages_as_unavailable():
            async with engine.begin() as conn:
                yield conn

    async def ping(self) -> bool:
        try:
            async with self.read() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except StoreUnavailable:
            return False

    async def schema_revision(self) -> str | None:
        """The applied Alembic revision, or None on an empty database."""
        async with self.read() as conn:
            if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
                return None
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (safe to run from many processes at once)."""
        if await self.schema_revision() == SCHEMA_HEAD:
            return
        try:
            async with self._write_engine.begin() as conn:
                if not self.is_sqlite:
                    # A migration may outlast the statement timeout meant for requests.
                    await conn.execute(text("SET LOCAL statement_timeout = 0"))
                    # One migrator at a time across processes; released at commit.
                    await conn.execute(text("SELECT pg_advisory_xact_lock(7310561)"))
                await conn.run_sync(_run_alembic_upgrade)
        except SQLAlchemyError as exc:
            if _is_outage(exc):
                raise StoreUnavailable() from exc
            raise

    async def dispose(self) -> None:
        await self.engine.dispose()


def _run_alembic_upgrade(sync_conn) -> None:  # noqa: ANN001
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


def open_database(url: str, *, connect_timeout_seconds: float = 5.0, statement_timeout_seconds: float = 5.0) -> Database:
    """Create the engine for ``url`` (``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``).

    The timeouts make an unreachable or frozen database answer ``StoreUnavailable`` within seconds:
    ``connect_timeout_seconds`` bounds opening a connection and waiting for a pooled one;
    ``statement_timeout_seconds`` bounds one statement (PostgreSQL cancels it server-side, the client
    gives up shortly after) and, on SQLite, waiting for another process's write lock.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            _create_private_sqlite_file(Path(path))
        # hide_parameters: driver errors would otherwise carry the bound values (numbers, objectives).
        engine = create_async_engine(url, hide_parameters=True, connect_args={"timeout": statement_timeout_seconds})
        _install_sqlite_hooks(engine, busy_timeout_ms=round(statement_timeout_seconds * 1000))
    elif url.startswith("postgresql"):
        engine = create_async_engine(
            url,
            hide_parameters=True,
            pool_size=10,
            max_overflow=10,
            pool_timeout=connect_timeout_seconds,
            connect_args={
                "timeout": connect_timeout_seconds,
                "command_timeout": statement_timeout_seconds + _CLIENT_TIMEOUT_MARGIN_SECONDS,
                "server_settings": {"statement_timeout": str(round(statement_timeout_seconds * 1000))},
            },
        )
        _install_idle_ping(engine)
    else:
        raise ValueError("BYS_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
    return Database(engine)


# A pooled connection idle longer than this is pinged before use (see _install_idle_ping).
_PING_AFTER_IDLE_SECONDS = 1.0


def _install_idle_ping(engine: AsyncEngine) -> None:
    """Ping a pooled PostgreSQL connection before use only when it sat idle for a while.

    ``pool_pre_ping`` pings on every checkout, which for asyncpg is three round trips (BEGIN, a
    query, ROLLBACK) before each transaction. A connection given back less than a second ago
    was just working; one idle longer (across a database restart, say) is checked, and a dead
    one is replaced before the request uses it (``DisconnectionError``: the pool retries with a
    new connection). A connection that dies while busy fails its transaction as an outage
    (``StoreUnavailable``), as it would with pre-ping, and the pool is invalidated.
    """
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _on_checkin(_dbapi_conn, record) -> None:  # noqa: ANN001
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _on_checkout(dbapi_conn, record, _proxy) -> None:  # noqa: ANN001
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < _PING_AFTER_IDLE_SECONDS:
            return  # new, or just given back
        try:
            dbapi_conn.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means: do not use this connection
            raise DisconnectionError() from exc


def _create_private_sqlite_file(path: Path) -> None:
    """The database holds webhook secrets and key hashes: a missing directory is created 0700 and
    the file (and its -wal/-shm, which SQLite creates with the file's mode) is owner-only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
        except FileNotFoundError:
            pass


def _install_sqlite_hooks(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # noqa: ANN001
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions are not enough).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn) -> None:  # noqa: ANN001
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode is not None:  # None: Database.query(), one statement in SQLite's own implicit transaction
            conn.exec_driver_sql(f"BEGIN {mode}")
