"""Batch throughput: rows accepted per second by POST /v1/agent/batches, and calls started per
second by workers under an account's concurrent-call limit.

    .venv/bin/python bench/batches.py [--rows 2000] [--concurrency 10] [--workers 2] [--slots 8]
                                      [--backends sqlite,postgres]
                                      [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

Posts one batch of ``--rows`` rows (JSON, simulator numbers) through the real app (in process,
over ASGI), then runs ``--workers`` call workers of ``--slots`` each against a carrier that
answers "no answer" after 10 ms, with the account limited to ``--concurrency`` calls at once,
until every call has ended. Prints figures only; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from byourside_server.agent.offline import OfflineBrain
from byourside_server.api.app import create_app
from byourside_server.logs import configure_logging
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from byourside_server.services import build_services
from byourside_server.settings import Settings
from byourside_server.telephony.base import DialOutcome, DialRequest, DialResult, Telephony


class NoAnswer(Telephony):
    """Rings 10 ms, then no answer; counts dials and the most at once."""

    name = "bench"

    def __init__(self) -> None:
        self.dials = 0
        self.now = 0
        self.most = 0

    async def dial(self, request: DialRequest) -> DialOutcome:
        self.dials += 1
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.01)
        finally:
            self.now -= 1
        return DialOutcome(DialResult.NO_ANSWER, reason="bench")


async def run(url: str, data_dir: Path, rows: int, concurrency: int, workers: int, slots: int) -> str:
    settings = Settings(data_dir=data_dir, database_url=url, poll_seconds=0.05, heartbeat_seconds=1.0,
                        webhook_delivery=False)
    services = build_services(settings)
    await services.db.migrate()
    try:
        account = await services.accounts.create("bench", services.default_limits)
        await services.accounts.add_number(account.id, "+14155550100", make_default=True)
        await services.accounts.set_limits(account.id, max_concurrent_calls=concurrency, monthly_minutes=10_000_000)
        _, secret = await services.accounts.create_key(account.id)
        body = {"defaults": {"objective": "Confirm the delivery slot."},
                "calls": [{"to": f"+1415555{100 + i % 64:04d}", "metadata": {"row": str(i)}} for i in range(rows)]}
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as api:
            started = time.perf_counter()
            response = await api.post("/v1/agent/batches", json=body, headers={"Authorization": f"Bearer {secret}"})
            accept = time.perf_counter() - started
            assert response.status_code == 201, response.text[:300]
            batch_id = response.json()["batchId"]
            telephony = NoAnswer()
            deps = SessionDeps(calls=services.calls, telephony=telephony, brain=OfflineBrain(), ring_timeout_seconds=5,
                               gate=services.compliance)
            pool = [Worker(services, deps, concurrency=slots) for _ in range(workers)]
            tasks = [asyncio.create_task(w.run()) for w in pool]
            started = time.perf_counter()
            while True:
                batch = (await api.get(f"/v1/agent/batches/{batch_id}",
                                       headers={"Authorization": f"Bearer {secret}"})).json()
                if batch["finishedAt"]:
                    break
                await asyncio.sleep(0.2)
            drain = time.perf_counter() - started
            for w in pool:
                w.stop()
            await asyncio.gather(*tasks)
        return (f"{rows} rows accepted in {accept:5.2f} s = {rows / accept:6.0f} rows/s; "
                f"{telephony.dials} calls started in {drain:6.2f} s = {telephony.dials / drain:5.1f} calls/s "
                f"(limit {concurrency} at once, most seen {telephony.most}; {workers} workers x {slots} slots)")
    finally:
        await services.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    configure_logging("warning", False)  # the figures, not a line per call
    for backend in args.backends.split(","):
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
                line = await run(url, Path(tmp), args.rows, args.concurrency, args.workers, args.slots)
            finally:
                if drop:
                    conn = await asyncpg.connect(drop[0])
                    await conn.execute(f'DROP DATABASE IF EXISTS "{drop[1]}" WITH (FORCE)')
                    await conn.close()
        print(f"{backend:8s} {line}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
