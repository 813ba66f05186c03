"""A TCP proxy in front of PostgreSQL that tests cut or freeze, to play a database outage for real.

- ``cut()``: the database is gone: new connections are refused and open ones are dropped.
- ``freeze()``: the database hangs (a SIGSTOPped server, a proxy that stops forwarding):
  connections are still accepted but no byte moves either way.
- ``restore()``: the database is back on the same address; frozen connections resume.
"""

from __future__ import annotations

import asyncio


class DatabaseProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.tasks: set[asyncio.Task] = set()

    @classmethod
    async def in_front_of(cls, postgres_url: str) -> tuple["DatabaseProxy", str]:
        """Start a proxy for the database of ``postgres_url``; the proxy and the URL that goes through it."""
        host_port = postgres_url.split("@", 1)[1].split("/", 1)[0]
        host, port = host_port.split(":")
        proxy = cls(host, int(port))
        await proxy.start()
        return proxy, postgres_url.replace(host_port, f"127.0.0.1:{proxy.port}")

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accepted, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        await self.server.wait_closed()
        self.server = None

    def freeze(self) -> None:
        """Keep accepting connections, but forward nothing until ``restore()``."""
        self.flowing.clear()

    async def restore(self) -> None:
        self.flowing.set()
        if self.server is None:
            await self.start()  # same port: the database is back where it was

    async def close(self) -> None:
        self.flowing.set()
        if self.server is not None:
            await self.cut()
        for task in list(self.tasks):
            task.cancel()

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.writers.add(writer)
        try:
            await self.flowing.wait()
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                writer.transport.abort()
                return
            self.writers.add(up_writer)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            self.writers.discard(up_writer)
        finally:
            self.writers.discard(writer)
            self.tasks.discard(task)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                await self.flowing.wait()
                dst.write(data)
                await dst.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            dst.transport.abort()
