"""Shared fixtures: a real store on every backend (SQLite file, PostgreSQL database).

PostgreSQL comes from BYS_TEST_POSTGRES_URL (default: the local server, trust
auth). Each test session creates its own database and drops it at the end;
each test starts from empty tables. Without a reachable server the PostgreSQL
variants skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdks" / "python"))

from byourside_server.api.app import create_app  # noqa: E402
from byourside_server.services import Services  # noqa: E402
from byourside_server.store.database import open_database  # noqa: E402

from support import IN_CI, PG_ADMIN_URL, open_services  # noqa: E402
from s3_server import s3_server  # noqa: E402,F401 - one moto server per test session, for every test that asks


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _create_pg_database() -> str:
    import asyncpg

    name = f"bys_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(_dsn(PG_ADMIN_URL), timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    db = open_database(url)
    await db.migrate()
    await db.dispose()
    return url


async def _drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(_dsn(PG_ADMIN_URL), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    try:
        url = asyncio.run(_create_pg_database())
    except Exception as exc:  # noqa: BLE001
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL} ({type(exc).__name__}: {exc}); set BYS_TEST_POSTGRES_URL"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    yield url
    asyncio.run(_drop_pg_database(url))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'byourside.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    svc = await open_services(database_url, tmp_path)
    yield svc
    await svc.aclose()


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client




# Under pytest-xdist (`make test` runs two workers), tests that play audio in real time run one at a
# time within their group: the carriers' media streams in one, SIP and RTP on loopback (and every
# other `voice` test, the realtime models over SIP) in another, so that at most two calls' audio
# share the two cores. The browser tests are a group of their own; everything else spreads over both
# workers. See `--dist loadgroup` in the Makefile.
_REAL_TIME_DIRS = ("sip", "carriers")
_REAL_TIME_FILES = ("test_realtime_over_sip.py",)


# tryfirst: xdist's own hook turns the marks into group names, so the marks must be on first.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        parts = path.relative_to(ROOT / "tests").parts if path.is_relative_to(ROOT / "tests") else ()
        if parts and parts[0] == "carriers":
            item.add_marker(pytest.mark.xdist_group("real_time:carriers"))
        elif (parts and parts[0] in _REAL_TIME_DIRS) or path.name in _REAL_TIME_FILES \
                or item.get_closest_marker("voice"):
            item.add_marker(pytest.mark.xdist_group("real_time"))
        elif parts and parts[0] == "browser":
            item.add_marker(pytest.mark.xdist_group("browser"))
        elif parts and parts[0] == "e2e":
            # An e2e module shares one server process between its tests, and some read what the
            # earlier ones did (the server's log of their calls): the module stays on one worker.
            item.add_marker(pytest.mark.xdist_group(f"e2e:{path.name}"))
