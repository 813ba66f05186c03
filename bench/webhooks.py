"""Webhook delivery throughput: deliveries per second from the outbox to a loopback receiver.

    .venv/bin/python bench/webhooks.py [--events 400] [--loops 1,2] [--concurrency 8] [--backends sqlite,postgres]
                                       [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

Queues ``--events`` deliveries in the real store, runs N delivery loops (each with
its own connection pool, as separate processes would have) against an asyncio
HTTP receiver that answers 204 at once, and prints how long all took. Prints
figures only; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import select

from byourside_server.domain import CallStatus
from byourside_server.services import build_services
from byourside_server.settings import Settings
from byourside_server.store import schema as t
from byourside_server.store.calls import NewCall
from byourside_server.webhooks.delivery import DeliveryWorker, RetrySchedule
from byourside_server.webhooks.events import enqueue_for_transition
from byourside_server.webhooks.sender import WebhookSender


class Receiver:
    """Counts POSTs and answers each with 204 (HTTP/1.1, connection closed)."""

    def __init__(self) -> None:
        self.count = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
        await reader.readexactly(length)
        self.count += 1
        writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


def settings_for(url: str, data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, database_url=url, webhook_poll_seconds=0.05, log_level="warning")


async def run(url: str, data_dir: Path, events: int, loops: int, concurrency: int) -> float:
    services = build_services(settings_for(url, data_dir))
    await services.db.migrate()
    account = await services.accounts.create(f"bench-{uuid.uuid4().hex[:6]}", services.default_limits)
    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    new = NewCall(
        to_number="+14155550123", from_number="+14155550100", objective="bench", context=None, fields=(),
        webhook_url=f"http://127.0.0.1:{port}/hook", voice="alloy", language="en-US", language_source="explicit",
        max_duration_seconds=60, metadata={},
    )
    call = (await services.calls.create(account, new, idempotency_key=None, request_hash=None, respond=lambda c: {})).call
    async with services.db.write() as conn:
        row = (await conn.execute(select(t.calls).where(t.calls.c.id == call.id))).mappings().one()
        for _ in range(events):
            await enqueue_for_transition(conn, row, CallStatus.COMPLETED, services.clock.now())
    pools = [services] + [build_services(settings_for(url, data_dir)) for _ in range(loops - 1)]
    workers = [
        DeliveryWorker(s, worker_id=f"bench-{i}", sender=WebhookSender(allow_http=True, allow_private=True),
                       schedule=RetrySchedule((0,), 0), concurrency=concurrency)
        for i, s in enumerate(pools)
    ]
    started = time.perf_counter()
    tasks = [asyncio.create_task(w.run()) for w in workers]
    while receiver.count < events:
        await asyncio.sleep(0.005)
    took = time.perf_counter() - started
    for w in workers:
        w.stop()
    await asyncio.gather(*tasks)
    server.close()
    for s in pools:
        await s.aclose()
    return took


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--loops", default="1,2")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        for loops in (int(n) for n in args.loops.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                if backend == "sqlite":
                    url, drop = f"sqlite+aiosqlite:///{tmp}/bench.db", None
                else:
                    name = f"bys_bench_{uuid.uuid4().hex[:8]}"
                    admin = args.postgres_url.replace("postgresql+asyncpg://", "postgresql://")
                    conn = await asyncpg.connect(admin)
                    await conn.execute(f'CREATE DATABASE "{name}"')
                    await conn.close()
                    url, drop = args.postgres_url.rsplit("/", 1)[0] + f"/{name}", (admin, name)
                try:
                    took = await run(url, Path(tmp), args.events, loops, args.concurrency)
                finally:
                    if drop:
                        conn = await asyncpg.connect(drop[0])
                        await conn.execute(f'DROP DATABASE IF EXISTS "{drop[1]}" WITH (FORCE)')
                        await conn.close()
            print(f"{backend:8s} loops={loops} concurrency={args.concurrency}: "
                  f"{args.events} deliveries in {took:5.2f} s = {args.events / took:6.0f}/s", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
