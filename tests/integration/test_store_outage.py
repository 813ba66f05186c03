"""A database outage answers 503 store_error, creates nothing, and the API recovers afterwards.

The server talks to PostgreSQL through a real TCP proxy that the test cuts and restores.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from byourside_server.api.app import create_app
from support import auth, new_account, open_services

GOOD = {"to": "+14155550123", "objective": "Ask for the opening hours."}


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening and drop every open connection."""
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}


async def test_database_outage_is_503_and_creates_nothing(postgres_url: str, tmp_path: Path):
    host_port = postgres_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    proxied_url = postgres_url.replace(host_port, f"127.0.0.1:{proxy.port}")
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

            await proxy.start()  # same port: the database is back
            listed = await api.get("/v1/agent/calls", headers=auth(secret))
            assert listed.status_code == 200
            assert len(listed.json()["calls"]) == 1  # the request made during the outage created nothing
            assert (await api.post("/v1/agent/calls", json=GOOD, headers=auth(secret))).status_code == 201
    finally:
        await services.aclose()
