"""A database outage answers 503 store_error, creates nothing, and the API recovers afterwards.

The server talks to PostgreSQL through a real TCP proxy that the test cuts, freezes and restores.
A frozen database (a stopped server, a network path that stops forwarding) must answer within the
configured timeouts, not after the driver's own half-minute.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from byourside_server.api.app import create_app
from byourside_server.errors import StoreUnavailable
from db_proxy import DatabaseProxy
from support import auth, new_account, open_services

GOOD = {"to": "+14155550123", "objective": "Ask for the opening hours."}
# Short timeouts, so the test is quick; the bound the test waits is far above them and far below
# the ~32 s a frozen database used to take.
TIMEOUTS = {"db_connect_timeout_seconds": 1, "db_statement_timeout_seconds": 1}
PATIENCE_SECONDS = 20


async def test_database_outage_is_503_and_creates_nothing(postgres_url: str, tmp_path: Path):
    proxy, proxied_url = await DatabaseProxy.in_front_of(postgres_url)
    services = await open_services(proxied_url, tmp_path)
    try:
        _, secret = await new_account(services)
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
            assert (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).status_code == 201

            await proxy.cut()
            for method, url in [("POST", "/v1/agent/calls"), ("GET", "/v1/agent/calls")]:
                response = await api.request(method, url, json=GOOD, headers=auth(secret))
                assert response.status_code == 503, response.text
                assert response.json()["error"] == "store_error"
                assert "Traceback" not in response.text
            assert (await api.get("/healthz")).status_code == 503

            await proxy.restore()
            listed = await api.get("/v1/agent/calls", headers=auth(secret))
            assert listed.status_code == 200
            assert len(listed.json()["calls"]) == 1  # the request made during the outage created nothing
            assert (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).status_code == 201
    finally:
        await services.aclose()
        await proxy.close()


async def test_frozen_database_answers_503_within_the_timeouts(postgres_url: str, tmp_path: Path):
    proxy, proxied_url = await DatabaseProxy.in_front_of(postgres_url)
    services = await open_services(proxied_url, tmp_path, **TIMEOUTS)
    try:
        _, secret = await new_account(services)
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
            assert (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).status_code == 201

            proxy.freeze()
            # Pooled connections hang mid-statement; then new ones hang mid-handshake.
            for method, url in [("GET", "/v1/agent/calls"), ("POST", "/v1/agent/calls"), ("GET", "/v1/agent/calls")]:
                request = api.request(method, url, json=GOOD, headers=auth(secret))
                response = await asyncio.wait_for(request, timeout=PATIENCE_SECONDS)
                assert response.status_code == 503, response.text
                assert response.json()["error"] == "store_error"

            await proxy.restore()
            listed = await api.get("/v1/agent/calls", headers=auth(secret))
            assert listed.status_code == 200
            assert len(listed.json()["calls"]) == 1
    finally:
        await services.aclose()
        await proxy.close()


async def test_statement_over_the_timeout_is_a_store_error_and_the_store_recovers(postgres_url: str, tmp_path: Path):
    services = await open_services(postgres_url, tmp_path, **TIMEOUTS)
    try:
        with pytest.raises(StoreUnavailable):
            async with services.db.read() as conn:
                await conn.execute(text("SELECT pg_sleep(5)"))  # cancelled by the server after 1 s
        assert await services.db.ping()
    finally:
        await services.aclose()


async def test_sqlite_write_lock_held_elsewhere_is_a_store_error_within_the_timeout(tmp_path: Path):
    path = tmp_path / "byourside.db"
    services = await open_services(f"sqlite+aiosqlite:///{path}", tmp_path, **TIMEOUTS)
    other_process = sqlite3.connect(path, isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(new_account(services), timeout=PATIENCE_SECONDS)
        other_process.execute("ROLLBACK")
        await new_account(services)
    finally:
        other_process.close()
        await services.aclose()
