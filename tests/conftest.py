"""Shared fixtures: a real store on every backend (SQLite file, PostgreSQL database).

PostgreSQL comes from BYS_TEST_POSTGRES_URL (default: the local server, trust
auth). Each test session creates its own database and drops it at the end;
each test starts from empty tables. Without a reachable server the PostgreSQL
variants skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdks" / "python"))

from byourside_server.api.app import create_app  # noqa: E402
from byourside_server.clock import Clock, SystemClock  # noqa: E402
from byourside_server.services import Services, build_services  # noqa: E402
from byourside_server.settings import Settings  # noqa: E402
from byourside_server.store.database import open_database  # noqa: E402

PG_ADMIN_URL = os.environ.get("BYS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
TABLES = ["call_events", "idempotency_keys", "phone_numbers", "calls", "api_keys", "accounts"]


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


def make_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "database_url": database_url,
        "sim_time_scale": 0.0,
        "poll_seconds": 0.05,
        "heartbeat_seconds": 0.2,
        "webhook_allow_private": True,
        "webhook_allow_http": True,
    }
    values.update(overrides)
    return Settings(**values)


async def open_services(database_url: str, tmp_path: Path, clock: Clock | None = None, **overrides: object) -> Services:
    services = build_services(make_settings(database_url, tmp_path, **overrides), clock=clock or SystemClock())
    await services.db.migrate()
    if not services.db.is_sqlite:
        from sqlalchemy import text

        async with services.db.write() as conn:
            await conn.execute(text("TRUNCATE " + ", ".join(TABLES) + " CASCADE"))
    return services


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


async def new_account(services: Services, name: str | None = None, caller_id: str = "+14155550100"):
    """An account with a caller ID and a key; returns (account, key secret)."""
    account = await services.accounts.create(name or f"acct-{uuid.uuid4().hex[:8]}", services.default_limits)
    await services.accounts.add_number(account.id, caller_id, make_default=True)
    _, secret = await services.accounts.create_key(account.id)
    return await services.accounts.get(account.id), secret


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
