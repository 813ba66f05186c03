"""What one process sustains, and whether placing a call costs more as history grows.

    .venv/bin/python bench/capacity.py [--backends sqlite,postgres] [--history 200000]
                                       [--throughput-calls 400] [--concurrent 50,100,200]

Three measurements, each on a fresh store per backend, in this process (the real application,
store and worker classes; no HTTP server, so the figures are the store's and the worker's cost):

- history: ``POST /v1/agent/calls`` through the ASGI app, one request at a time, alternating
  between an account with no calls and one with ``--history`` ended calls placed this month
  (seeded directly into the store, with their usage totals); p50/p99 of each and the ratio.
- throughput: ``--throughput-calls`` calls queued at once, then one worker (``BYS_WORKERS=8``)
  conducts them on the simulator at time scale 0 (no simulated time); calls per second and
  process CPU per call, from the first claim to the last end.
- concurrent: at time scale 1 (calls last as long as they would), N calls queued and one worker
  with concurrency N; once they are live, the event loop's lag (a 10 ms timer's lateness, every
  10 ms) is sampled for ``--window`` seconds. p99 under 20 ms means the loop keeps up.

It prints figures and asserts nothing. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "sdks" / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import summarize_ms  # noqa: E402

CALL = {"to": "+14155550123", "objective": "Ask for the opening hours.", "fields": [{"name": "opens_at"}]}
HIGH = {"calls_per_minute": 10**8, "max_concurrent_calls": 10**8, "monthly_minutes": 10**8}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def open_store(backend: str, admin_url: str, tmp: Path, **overrides):  # noqa: ANN201
    """Services on a fresh store: a SQLite file, or a new PostgreSQL database (dropped by the returned closer)."""
    import asyncpg
    from support import open_services

    if backend == "sqlite":
        services = await open_services(f"sqlite+aiosqlite:///{tmp / f'{uuid.uuid4().hex}.db'}", tmp,
                                       log_level="warning", **overrides)

        async def close() -> None:
            await services.aclose()
        return services, close
    name = f"bys_cap_{uuid.uuid4().hex[:10]}"
    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    services = await open_services(admin_url.rsplit("/", 1)[0] + f"/{name}", tmp, log_level="warning", **overrides)

    async def close_pg() -> None:
        await services.aclose()
        conn = await asyncpg.connect(dsn, timeout=5)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    return services, close_pg


async def seed_history(services, account_id: str, n: int) -> None:  # noqa: ANN001
    """``n`` completed calls of 42 s each, spread over this month before the last two minutes, and their totals."""
    from sqlalchemy import insert

    from byourside_server.store import schema as t
    from byourside_server.store.usage import month_key

    now = services.clock.now()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    span = (now - timedelta(minutes=2) - start) / n
    base = {"account_id": account_id, "status": "completed", "to_number": "+14155550123", "from_number": "+14155550100",
            "objective": "Ask for the opening hours.", "fields": [], "voice": "alloy", "language": "en-US",
            "language_source": "inferred", "max_duration_seconds": 600, "metadata": {}, "duration_seconds": 42,
            "end_reason": "objective_met"}
    for first in range(0, n, 5000):
        rows = [{**base, "id": f"hist-{i:08d}", "created_at": start + span * i, "ended_at": start + span * i}
                for i in range(first, min(n, first + 5000))]
        async with services.db.write() as conn:
            await conn.execute(insert(t.calls), rows)
    async with services.db.write() as conn:  # what ending them one by one would have written (store/usage.py)
        await conn.execute(insert(t.usage_months).values(account_id=account_id, month=month_key(now), calls=n,
                                                         seconds=42 * n))


async def asgi_post(app, headers, body: bytes) -> int:  # noqa: ANN001
    sent = [{"type": "http.request", "body": body, "more_body": False}]
    status = {}

    async def receive():  # noqa: ANN202
        return sent.pop(0) if sent else {"type": "http.disconnect"}

    async def send(message):  # noqa: ANN001, ANN202
        if message["type"] == "http.response.start":
            status["code"] = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/agent/calls", "raw_path": b"/v1/agent/calls", "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    return status["code"]


async def bench_history(backend: str, args: argparse.Namespace, tmp: Path) -> dict:
    from byourside_server.api.app import create_app
    from support import new_account

    services, close = await open_store(backend, args.postgres_url, tmp)
    try:
        empty, empty_key = await new_account(services, caller_id="+14155550100")
        full, full_key = await new_account(services, caller_id="+14155550101")
        for account in (empty, full):
            await services.accounts.set_limits(account.id, **HIGH)
        t0 = time.monotonic()
        await seed_history(services, full.id, args.history)
        log(f"[{backend}] seeded {args.history:,} calls in {time.monotonic() - t0:.0f} s")
        app = create_app(services)
        body = json.dumps(CALL).encode()
        headers = {key: [(b"authorization", f"Bearer {key}".encode()), (b"content-type", b"application/json")]
                   for key in (empty_key, full_key)}
        times: dict[str, list[float]] = {empty_key: [], full_key: []}
        for i in range(args.history_requests + 20):
            for key in (empty_key, full_key):  # alternating, so machine load hits both alike
                t = time.perf_counter()
                assert await asgi_post(app, headers[key], body) == 201
                if i >= 20:  # warm-up
                    times[key].append((time.perf_counter() - t) * 1000)
        e, f = summarize_ms(times[empty_key]), summarize_ms(times[full_key])
        log(f"[{backend}] POST, empty account p50 {e['p50']:.1f} ms p99 {e['p99']:.1f}; with {args.history:,} calls "
            f"this month p50 {f['p50']:.1f} ms p99 {f['p99']:.1f}; ratio p50 {f['p50'] / e['p50']:.2f}")
        return {"empty": e, "full": f}
    finally:
        await close()


async def lag_probe(samples: list[float], stop: asyncio.Event, interval: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(interval)
        samples.append((loop.time() - t - interval) * 1000)


async def place(services, account, key, n: int) -> list[str]:  # noqa: ANN001
    from byourside_server.api.requests import validate_call_request
    from byourside_server.placement import place_call

    request = validate_call_request(CALL)
    return [(await place_call(services, account, key, request)).response["callId"] for _ in range(n)]


async def count_status(services, statuses: tuple[str, ...]) -> int:  # noqa: ANN001
    from sqlalchemy import func, select

    from byourside_server.store import schema as t

    async with services.db.read() as conn:
        return (await conn.execute(select(func.count()).where(t.calls.c.status.in_(statuses)))).scalar_one()


async def bench_worker(backend: str, args: argparse.Namespace, tmp: Path, *, scale: float, concurrency: int,
                       calls: int, window: float = 0.0) -> dict:
    from byourside_server.server import build_worker
    from support import new_account

    services, close = await open_store(backend, args.postgres_url, tmp, sim_time_scale=scale, workers=concurrency,
                                       poll_seconds=0.5, heartbeat_seconds=3.0)
    try:
        account, _ = await new_account(services)
        await services.accounts.set_limits(account.id, **HIGH)
        key = (await services.accounts.list_keys(account.id))[0]
        await place(services, account, key, calls)
        worker = build_worker(services)
        lags: list[float] = []
        stop_probe = asyncio.Event()
        cpu0, t0 = time.process_time(), time.monotonic()
        task = asyncio.create_task(worker.run())
        result: dict = {"calls": calls, "concurrency": concurrency}
        if scale == 0:
            while await count_status(services, ("queued", "dialing", "in_progress")) and time.monotonic() - t0 < 600:
                await asyncio.sleep(0.2)
            elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
            result.update(rate=calls / elapsed, cpu_ms_per_call=cpu / calls * 1000, seconds=elapsed)
            log(f"[{backend}] time scale 0, {calls} calls, worker concurrency {concurrency}: {calls / elapsed:.1f} calls/s, "
                f"{cpu / calls * 1000:.1f} ms process CPU per call")
        else:
            deadline = time.monotonic() + 120
            while await count_status(services, ("in_progress",)) < calls and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            live_at_start = await count_status(services, ("in_progress",))
            probe = asyncio.create_task(lag_probe(lags, stop_probe))
            cpu1 = time.process_time()
            await asyncio.sleep(window)
            stop_probe.set()
            await probe
            live_at_end = await count_status(services, ("in_progress",))
            lag = summarize_ms(lags)
            core = (time.process_time() - cpu1) / window * 100
            result.update(live_at_start=live_at_start, live_at_end=live_at_end, lag=lag, core_pct=core)
            log(f"[{backend}] time scale 1, {calls} calls queued, concurrency {concurrency}: {live_at_start} live when the "
                f"window opened, {live_at_end} at its end; loop lag p50 {lag['p50']:.1f} ms p99 {lag['p99']:.1f} ms "
                f"max {lag['max']:.0f} ms; process at {core:.0f}% of one core")
            # End every call now rather than waiting minutes for them (cancel hangs up live calls).
            from sqlalchemy import select

            from byourside_server.errors import CallNotActive
            from byourside_server.store import schema as t

            async with services.db.read() as conn:
                active = (await conn.execute(select(t.calls.c.id).where(
                    t.calls.c.status.in_(("queued", "dialing", "in_progress"))))).scalars().all()
            for call_id in active:
                try:
                    await services.calls.request_cancel(account.id, call_id)
                except CallNotActive:  # it ended meanwhile
                    pass
            services.signals.cancel_requested.set()
        worker.stop()
        await asyncio.wait_for(task, timeout=300)
        return result
    finally:
        await close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--postgres-url", default=os.environ.get(
        "BYS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--history", type=int, default=200_000, help="calls seeded into one account's month (0: skip)")
    p.add_argument("--history-requests", type=int, default=200, help="POSTs per account in the history phase")
    p.add_argument("--throughput-calls", type=int, default=400, help="calls for the time-scale-0 phase (0: skip)")
    p.add_argument("--throughput-concurrency", type=int, default=8)
    p.add_argument("--concurrent", default="50,100,200", help="concurrent calls at time scale 1 ('' to skip)")
    p.add_argument("--window", type=float, default=15.0, help="seconds of lag sampling per concurrency")
    args = p.parse_args(argv)
    os.environ["BYS_LOG_LEVEL"] = "warning"
    from byourside_server.logs import configure_logging

    configure_logging("warning", False)
    tmp = Path(tempfile.mkdtemp(prefix="bys-capacity-"))
    out: dict = {}
    try:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            figures = out.setdefault(backend, {})
            if args.history:
                figures["history"] = asyncio.run(bench_history(backend, args, tmp))
            if args.throughput_calls:
                figures["throughput"] = asyncio.run(bench_worker(
                    backend, args, tmp, scale=0, concurrency=args.throughput_concurrency, calls=args.throughput_calls))
            for n in [int(x) for x in args.concurrent.split(",") if x.strip()]:
                figures.setdefault("concurrent", []).append(asyncio.run(bench_worker(
                    backend, args, tmp, scale=1, concurrency=n, calls=n, window=args.window)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=1, default=lambda x: round(x, 2) if isinstance(x, float) else str(x)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
