"""HTTP benchmark of the Agent Calling API against a bare FastAPI baseline.

    .venv/bin/python bench/api.py [--duration 10] [--concurrency 32] [--backends sqlite,postgres]
                                  [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

Starts a hello-world FastAPI app and `byourside serve` (once per store backend) as
subprocesses on 127.0.0.1, drives them from this process with 32 concurrent
keep-alive connections (a minimal asyncio HTTP/1.1 client by default, httpx with
--client httpx), records where the CPU went, measures queued-to-dialing latency
from the store's own timestamps, and prints figures plus a markdown block for
docs/benchmarks.md. It prints figures only: it asserts nothing about speed.
Every subprocess, temporary directory and temporary database is cleaned up, also
on Ctrl-C or an error. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    BIN,
    CpuMeter,
    LoadResult,
    Proc,
    RawClient,
    RawHTTPError,
    StoreReader,
    free_port,
    machine_facts,
    machine_load_note,
    pg_dsn,
    serve_baseline,
    summarize_ms,
    wait_http_ok,
)

CALL_BODY = {"to": "+14155550123", "objective": "Ask for the opening hours.", "fields": [{"name": "opens_at"}]}
CALL_BODY_BYTES = json.dumps(CALL_BODY).encode()
JSON_HEADERS = {"content-type": "application/json"}
HIGH_LIMITS = ["--calls-per-minute", "10000000", "--max-concurrent", "10000000", "--monthly-minutes", "100000000"]
BACKEND_LABEL = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def utc_now() -> datetime:
    """Naive UTC, the way the store keeps timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# The load generator


async def run_load(
    client: Any,
    send: Callable[[Any], Awaitable[Any]],
    *,
    label: str,
    concurrency: int,
    warmup: float,
    duration: float,
    on_ok: Callable[[Any], None] | None = None,
    meter: CpuMeter | None = None,
    alive: Callable[[], bool] | None = None,
) -> LoadResult:
    """``concurrency`` closed-loop tasks for warmup + duration seconds; only requests started after the warm-up count."""
    import httpx

    failures = (httpx.HTTPError, OSError, TimeoutError, RawHTTPError, asyncio.IncompleteReadError)
    result = LoadResult(label, duration, concurrency)
    errors: Counter[str] = Counter()
    samples: list[str] = []
    measure_from = perf_counter() + warmup
    stop = measure_from + duration

    async def task() -> None:
        while True:
            t0 = perf_counter()
            if t0 >= stop:
                return
            key = None
            try:
                response = await send(client)
                t1 = perf_counter()
                if 200 <= response.status_code < 300:
                    if on_ok is not None:
                        on_ok(response)
                else:
                    key = f"HTTP {response.status_code}"
                    if len(samples) < 3:
                        samples.append(f"{key} {response.headers.get('x-request-id', '')} {response.text[:200]}")
            except failures as exc:
                t1 = perf_counter()
                key = type(exc).__name__
                if len(samples) < 3:
                    samples.append(f"{key}: {exc}")
                if alive is not None and not alive():
                    raise RuntimeError(f"the server under test exited during '{label}'") from exc
            if t0 >= measure_from:
                if key is None:
                    result.latencies_ms.append((t1 - t0) * 1000)
                else:
                    errors[key] += 1

    async def measure_cpu() -> None:
        if meter is None:
            return
        await asyncio.sleep(max(0.0, measure_from - perf_counter()))
        meter.start()
        await asyncio.sleep(max(0.0, stop - perf_counter()))
        result.cpu = meter.stop()

    await asyncio.gather(measure_cpu(), *(task() for _ in range(concurrency)))
    result.errors = dict(errors)
    result.error_samples = samples
    return result


def new_client(kind: str, base_url: str, concurrency: int, api_key: str | None = None) -> Any:
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    if kind == "raw":
        return RawClient(base_url, concurrency, headers)
    import httpx

    return httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        timeout=httpx.Timeout(30.0),
        http2=False,
        trust_env=False,  # loopback only: never through a proxy from the environment
    )


def report_load(result: LoadResult) -> None:
    errs = f", errors {result.error_count} {result.errors}" if result.error_count else ""
    log(
        f"    {result.label}: {result.requests} requests, {result.throughput:,.0f} req/s, "
        f"p50 {result.pct(50):.2f} ms, p90 {result.pct(90):.2f} ms, p99 {result.pct(99):.2f} ms, "
        f"max {result.max_ms:.1f} ms{errs}"
    )
    if result.cpu is not None:
        c = result.cpu
        db = f", database {c.share(c.database)}" if c.database is not None else ""
        log(
            f"      CPU over {c.cpus:.1f} cpus: server {c.share(c.server)}, load generator {c.share(c.generator)}{db}, "
            f"everything else {c.share(c.other)}, idle {c.share(c.machine_total - c.machine_busy)}; "
            f"server CPU {result.server_cpu_ms_per_request:.2f} ms/request"
        )
    for sample in result.error_samples:
        log(f"      e.g. {sample}")


def run_async(coro: Awaitable[Any], client_loop: str) -> Any:
    if client_loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)


# Baseline


def bench_baseline(args: argparse.Namespace, tmp: Path, cleanups: list) -> dict[str, LoadResult]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYS_")}
    proc = Proc("baseline", [sys.executable, str(Path(__file__).resolve()), "_baseline", str(port)], env, tmp / "baseline.log")
    cleanups.append(proc.stop)
    base = f"http://127.0.0.1:{port}"
    wait_http_ok(proc, f"{base}/hello", timeout=180)
    log(f"[baseline] bare FastAPI on {base}")

    meter = CpuMeter(proc.process.pid)

    async def go() -> dict[str, LoadResult]:
        out = {}
        async with new_client(args.client, base, args.concurrency) as client:
            out["get"] = await run_load(
                client, lambda c: c.get("/hello"), label="GET /hello", concurrency=args.concurrency,
                warmup=args.warmup, duration=args.duration, meter=meter,
            )
            report_load(out["get"])
            out["post"] = await run_load(
                client, lambda c: c.post("/echo", content=CALL_BODY_BYTES, headers=JSON_HEADERS), label="POST /echo",
                concurrency=args.concurrency, warmup=args.warmup, duration=args.duration, meter=meter,
            )
            report_load(out["post"])
        return out

    try:
        return run_async(go(), args.client_loop)
    finally:
        proc.stop()


# byourside on one backend


@dataclass
class PacedResult:
    rate: float
    dial_ms: dict[str, float]  # queued -> dialing
    post_ms: dict[str, float]  # the placing requests' own latency
    server_core_pct: float  # server process CPU while placing, in % of one core


@dataclass
class BackendRun:
    backend: str
    post: LoadResult | None = None
    get: LoadResult | None = None
    dial_paced: list[PacedResult] = field(default_factory=list)
    dial_saturation: dict[str, float] = field(default_factory=dict)
    saturation_calls: int = 0
    saturation_undialled: int = 0
    dial_rate: float = float("nan")  # calls dialled per second while draining the backlog (API idle)
    dial_rate_under_load: float = float("nan")  # ... during the measured POST load
    drain_seconds: float = float("nan")
    backlog_after_post: int = 0
    log_findings: list[str] = field(default_factory=list)


async def create_pg_database(admin_url: str) -> tuple[str, str]:
    import asyncpg

    name = f"bys_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(pg_dsn(admin_url), timeout=5)
    try:
        version = await conn.fetchval("SHOW server_version")
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}", version


async def drop_pg_database(admin_url: str, url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(pg_dsn(admin_url), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def cli(env: dict[str, str], *argv: str) -> str:
    result = subprocess.run(
        [str(BIN / "byourside"), *argv], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"byourside {' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def scan_log(text: str) -> list[str]:
    """Lines worth a look in a server log run at BYS_LOG_LEVEL=warning."""
    interesting = []
    for line in text.splitlines():
        low = line.lower()
        if any(w in low for w in ("[error", "[warning", "[critical", "traceback", "exception", "locked", "error:")):
            interesting.append(line.strip())
    return interesting


def bench_backend(args: argparse.Namespace, backend: str, tmp: Path, cleanups: list) -> BackendRun:
    run = BackendRun(backend)
    data_dir = tmp / backend
    data_dir.mkdir()
    if backend == "postgres":
        database_url, _ = run_async(create_pg_database(args.postgres_url), "asyncio")
        cleanups.append(lambda: asyncio.run(drop_pg_database(args.postgres_url, database_url)))
        log(f"[{backend}] created database {database_url.rsplit('/', 1)[1]}")
    else:
        database_url = f"sqlite+aiosqlite:///{(data_dir / 'byourside.db').resolve()}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYS_")}
    env.update(
        {
            "BYS_DATA_DIR": str(data_dir),
            "BYS_HOST": "127.0.0.1",
            "BYS_PORT": str(port),
            "BYS_SIM_TIME_SCALE": "0",
            "BYS_LOG_LEVEL": "warning",
            "BYS_WORKERS": str(args.workers),
        }
    )
    if backend == "postgres":
        env["BYS_DATABASE_URL"] = database_url
    proc = Proc(f"byourside serve ({backend})", [str(BIN / "byourside"), "serve"], env, data_dir / "server.log")
    cleanups.append(proc.stop)
    base = f"http://127.0.0.1:{port}"
    wait_http_ok(proc, f"{base}/healthz", timeout=180)  # start-up (imports, migrations) is slow on a loaded machine
    cli(env, "accounts", "limits", "default", *HIGH_LIMITS)
    api_key = cli(env, "keys", "create", "--account", "default").strip().splitlines()[-1]
    log(f"[{backend}] byourside serve on {base} (workers={args.workers}, sim time scale 0)")

    try:
        run_async(_drive_backend(args, run, base, api_key, database_url, proc), args.client_loop)
    finally:
        proc.stop()
        run.log_findings = scan_log(proc.log())
        if proc.process.returncode not in (0, -signal.SIGTERM, None):
            run.log_findings.append(f"server exited with code {proc.process.returncode}")
    return run


async def _drive_backend(
    args: argparse.Namespace, run: BackendRun, base: str, api_key: str, database_url: str, proc: Proc
) -> None:
    pg_name = database_url.rsplit("/", 1)[1] if run.backend == "postgres" else None
    meter = CpuMeter(proc.process.pid, pg_name)
    reader = StoreReader(database_url)
    await reader.open()
    try:
        saturation_ids: list[str] = []
        async with new_client(args.client, base, args.concurrency, api_key) as client:
            run.post = await run_load(
                client,
                lambda c: c.post("/v1/agent/calls", content=CALL_BODY_BYTES, headers=JSON_HEADERS),
                label="POST /v1/agent/calls",
                concurrency=args.concurrency,
                warmup=args.warmup,
                duration=args.duration,
                on_ok=lambda r: saturation_ids.append(r.json()["callId"]),
                meter=meter,
                alive=proc.alive,
            )
            report_load(run.post)
        post_ended = utc_now()
        counts = await reader.status_counts()
        run.backlog_after_post = counts.get("queued", 0)
        log(f"    store right after the POST load: {dict(sorted(counts.items()))}")
        if not saturation_ids:
            raise RuntimeError("no call was created; cannot run the GET scenario")

        # Let the in-process worker drain the backlog, so that the GET load and the
        # queued->dialing phase measure a server that is not also conducting calls.
        t0 = time.monotonic()
        while True:
            counts = await reader.status_counts()
            busy = sum(counts.get(s, 0) for s in ("queued", "dialing", "in_progress"))
            if busy == 0 or time.monotonic() - t0 > args.drain_timeout or not proc.alive():
                break
            await asyncio.sleep(0.25)
        run.drain_seconds = time.monotonic() - t0
        drain_ended = utc_now()
        log(f"    backlog drained after {run.drain_seconds:.1f} s: {dict(sorted(counts.items()))}")
        await asyncio.sleep(0.5)

        ids = saturation_ids
        async with new_client(args.client, base, args.concurrency, api_key) as client:
            run.get = await run_load(
                client,
                lambda c: c.get(f"/v1/agent/calls/{random.choice(ids)}"),
                label="GET /v1/agent/calls/{id}",
                concurrency=args.concurrency,
                warmup=args.warmup,
                duration=args.duration,
                meter=meter,
                alive=proc.alive,
            )
            report_load(run.get)
        await asyncio.sleep(0.5)

        # Queued -> dialing with no other load: N calls placed at a paced rate (per rate asked for).
        paced: list[tuple[float, list[str], list[float], Any]] = []
        for rate in args.latency_rate:
            ids_at_rate: list[str] = []
            post_ms: list[float] = []
            async with new_client(args.client, base, 16, api_key) as client:

                async def place(at: float, client: Any = client, post_ms: list = post_ms, ids: list = ids_at_rate) -> None:
                    await asyncio.sleep(max(0.0, at - perf_counter()))
                    t = perf_counter()
                    response = await client.post("/v1/agent/calls", content=CALL_BODY_BYTES, headers=JSON_HEADERS)
                    if response.status_code == 201:
                        post_ms.append((perf_counter() - t) * 1000)
                        ids.append(response.json()["callId"])
                    else:
                        log(f"    paced POST answered {response.status_code}: {response.text[:200]}")

                start = perf_counter() + 0.1
                meter.start()
                await asyncio.gather(*(place(start + i / rate) for i in range(args.latency_calls)))
                cpu = meter.stop()
            deadline = time.monotonic() + 30
            while True:
                times = await reader.call_times()
                done = all(times.get(i, (None, None, ""))[1] is not None for i in ids_at_rate)
                if done or time.monotonic() > deadline or not proc.alive():
                    break
                await asyncio.sleep(0.25)
            paced.append((rate, ids_at_rate, post_ms, cpu))
            await asyncio.sleep(1.0)

        times = await reader.call_times()

        def waits(call_ids: list[str]) -> tuple[list[float], int]:
            out, missing = [], 0
            for call_id in call_ids:
                created, dialled, _ = times.get(call_id, (None, None, ""))
                if created is None or dialled is None:
                    missing += 1
                else:
                    out.append((dialled - created).total_seconds() * 1000)
            return out, missing

        for rate, ids_at_rate, post_ms, cpu in paced:
            w, missing = waits(ids_at_rate)
            stats = summarize_ms(w)
            stats["undialled"] = missing
            post = summarize_ms(post_ms)
            server_core = cpu.server / cpu.wall * 100 if cpu.wall else float("nan")
            run.dial_paced.append(PacedResult(rate, stats, post, server_core))
            log(
                f"    queued->dialing, {len(ids_at_rate)} calls paced at {rate:g}/s: p50 {stats['p50']:.1f} ms, "
                f"p99 {stats['p99']:.1f} ms, max {stats['max']:.1f} ms; their POST p50 {post['p50']:.1f} ms, "
                f"p99 {post['p99']:.1f} ms; server process at {server_core:.0f}% of one core"
            )
        sat_waits, sat_missing = waits(saturation_ids)
        run.dial_saturation = summarize_ms(sat_waits)
        run.saturation_calls = len(saturation_ids)
        run.saturation_undialled = sat_missing
        dialled = [times[i][1] for i in saturation_ids if i in times and times[i][1] is not None]
        under_load_from = post_ended - timedelta(seconds=args.duration)
        run.dial_rate_under_load = sum(under_load_from <= d < post_ended for d in dialled) / args.duration
        drain_span = (drain_ended - post_ended).total_seconds()
        if drain_span > 0.5:
            run.dial_rate = sum(post_ended <= d <= drain_ended for d in dialled) / drain_span
        s = run.dial_saturation
        log(
            f"    queued->dialing, calls placed under saturation ({run.saturation_calls}): p50 {s['p50']:.0f} ms, "
            f"p99 {s['p99']:.0f} ms, max {s['max']:.0f} ms; worker dial rate {run.dial_rate_under_load:,.1f} calls/s "
            f"during the POST load, {run.dial_rate:,.1f} calls/s while draining"
        )
    finally:
        await reader.close()


# Output


def fmt(x: float, digits: int = 1) -> str:
    return "-" if math.isnan(x) else f"{x:,.{digits}f}"


def markdown(args: argparse.Namespace, facts: dict[str, str], baseline: dict[str, LoadResult] | None,
             runs: list[BackendRun]) -> str:
    generator = "a minimal asyncio HTTP/1.1 keep-alive client" if args.client == "raw" else "httpx.AsyncClient"
    lines = ["### Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in facts.items()]
    lines += [
        "",
        (
            f"### HTTP: {args.concurrency} concurrent keep-alive connections, {args.duration:g} s measured after a "
            f"{args.warmup:g} s warm-up"
        ),
        "",
        (
            f"Load generator: {generator} ({args.client_loop} loop) in one process on the same machine, sharing its "
            "CPUs with the server; latency is measured per request with `time.perf_counter()` around send and full read."
        ),
        "",
        "| scenario | store | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms | p50 vs baseline | req/s vs baseline |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def row(name: str, store: str, r: LoadResult | None, ref: LoadResult | None) -> str:
        if r is None:
            return f"| {name} | {store} | - | - | - | - | - | - | - | - | - |"
        p50_ratio = f"{r.pct(50) / ref.pct(50):.1f}x" if ref and ref.ok and r.ok else "-"
        tp_ratio = f"{r.throughput / ref.throughput * 100:.0f}%" if ref and ref.throughput else "-"
        if ref is r:
            p50_ratio, tp_ratio = "1x", "100%"
        return (
            f"| {name} | {store} | {r.requests:,} | {r.error_count} | {r.throughput:,.0f} | {fmt(r.pct(50), 2)} | "
            f"{fmt(r.pct(90), 2)} | {fmt(r.pct(99), 2)} | {fmt(r.max_ms)} | {p50_ratio} | {tp_ratio} |"
        )

    if baseline:
        lines.append(row("baseline `GET /hello`", "none", baseline.get("get"), baseline.get("get")))
        lines.append(row("baseline `POST /echo`", "none", baseline.get("post"), baseline.get("post")))
    for r in runs:
        lines.append(row("`GET /v1/agent/calls/{id}`", BACKEND_LABEL[r.backend], r.get, baseline and baseline.get("get")))
        lines.append(row("`POST /v1/agent/calls`", BACKEND_LABEL[r.backend], r.post, baseline and baseline.get("post")))
    measured = [("baseline `GET /hello`", "none", baseline.get("get") if baseline else None),
                ("baseline `POST /echo`", "none", baseline.get("post") if baseline else None)]
    for r in runs:
        measured += [("`GET /v1/agent/calls/{id}`", BACKEND_LABEL[r.backend], r.get),
                     ("`POST /v1/agent/calls`", BACKEND_LABEL[r.backend], r.post)]
    measured = [m for m in measured if m[2] is not None and m[2].cpu is not None]
    if measured:
        cpus = measured[0][2].cpu.cpus
        lines += [
            "",
            f"### Where the CPU went during each measured window (shares of all {cpus:.0f} CPUs)",
            "",
            (
                "| scenario | store | server CPU ms/request | server process | load generator | PostgreSQL backends "
                "| everything else | idle |"
            ),
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, store, r in measured:
            c = r.cpu
            lines.append(
                f"| {name} | {store} | {fmt(r.server_cpu_ms_per_request, 2)} | {c.share(c.server)} | "
                f"{c.share(c.generator)} | {c.share(c.database)} | {c.share(c.other)} | "
                f"{c.share(c.machine_total - c.machine_busy)} |"
            )
    if runs:
        lines += [
            "",
            "### Queued to dialing (`calls.created_at` to `calls.dial_started_at`, read from the store)",
            "",
            (
                f"Worker: `BYS_WORKERS={args.workers}` in the `serve` process, simulator at time scale 0 (calls take "
                "no simulated time)."
            ),
            "",
            "| store | calls | p50 ms | p99 ms | max ms | notes |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in runs:
            for q in r.dial_paced:
                d, pm = q.dial_ms, q.post_ms
                note = (f"{args.latency_calls} calls paced at {q.rate:g}/s after the backlog had drained, "
                        "nothing else from the benchmark running; "
                        f"their POST p50 {fmt(pm['p50'])} ms, p99 {fmt(pm['p99'])} ms; server process at "
                        f"{fmt(q.server_core_pct, 0)}% of one core")
                if d.get("undialled"):
                    note += f"; {d['undialled']:.0f} not dialled within 30 s"
                lines.append(f"| {BACKEND_LABEL[r.backend]} | {d['n']:.0f} | {fmt(d['p50'])} | {fmt(d['p99'])} | "
                             f"{fmt(d['max'])} | {note} |")
            s = r.dial_saturation
            if s:
                note = (f"placed during the POST saturation run (incl. warm-up), so mostly queueing behind a backlog: "
                        f"{r.backlog_after_post:,} were still queued when it ended and took ~{fmt(r.drain_seconds, 0)} s "
                        f"to drain; the worker dialled ~{fmt(r.dial_rate_under_load, 0)} calls/s during the POST load "
                        f"and ~{fmt(r.dial_rate, 0)} calls/s while draining with the API idle")
                if r.saturation_undialled:
                    note += f"; {r.saturation_undialled} never dialled"
                lines.append(f"| {BACKEND_LABEL[r.backend]} | {s['n']:.0f} | {fmt(s['p50'], 0)} | {fmt(s['p99'], 0)} | "
                             f"{fmt(s['max'], 0)} | {note} |")
    return "\n".join(lines)


# Main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each scenario (default 2)")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent requests / connections (default 32)")
    p.add_argument("--backends", default="sqlite,postgres", help="comma list of sqlite, postgres")
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("BYS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"),
        help="admin URL; a temporary database is created next to it and dropped at the end",
    )
    p.add_argument("--workers", type=int, default=8, help="BYS_WORKERS for the server (default 8)")
    p.add_argument("--latency-calls", type=int, default=200, help="calls for the queued->dialing phase (default 200)")
    p.add_argument(
        "--latency-rate", default="20", help="their placement rate per second, or a comma list of rates (default 20)"
    )
    p.add_argument("--drain-timeout", type=float, default=45.0, help="max seconds to wait for the backlog to drain")
    p.add_argument("--no-baseline", action="store_true", help="skip the bare FastAPI baseline")
    p.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="load generator HTTP client: 'raw' (minimal asyncio HTTP/1.1, default) or 'httpx' (httpx.AsyncClient, "
        "whose own CPU cost caps what it can measure)",
    )
    p.add_argument(
        "--client-loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="event loop of the load generator (default asyncio; uvloop makes the client cheaper)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (server logs, SQLite file)")
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - set(BACKEND_LABEL)
    if unknown:
        p.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    try:
        args.latency_rate = [float(x) for x in str(args.latency_rate).split(",") if x.strip()]
    except ValueError:
        p.error("--latency-rate takes a number or a comma list of numbers")
    if args.concurrency < 1 or args.duration <= 0 or not args.latency_rate or min(args.latency_rate) <= 0:
        p.error("--concurrency, --duration and --latency-rate must be positive")
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_baseline"]:
        serve_baseline(int(argv[1]))
        return 0
    args = parse_args(argv)
    # Ctrl-C and SIGTERM both end in the cleanup below (even when started in the background by a shell).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="bys-bench-"))
    cleanups: list[Callable[[], Any]] = []
    baseline: dict[str, LoadResult] | None = None
    runs: list[BackendRun] = []
    pg_version: str | None = None
    code = 0
    started = time.monotonic()
    load_at_start = machine_load_note()
    try:
        if "postgres" in args.backends:
            try:
                pg_version = run_async(_pg_version(args.postgres_url), "asyncio")
            except Exception as exc:  # noqa: BLE001
                log(f"[postgres] not reachable at {args.postgres_url} ({type(exc).__name__}: {exc}); skipping it")
                args.backends.remove("postgres")
        log(f"Load generator: this process ({args.client} client, {args.client_loop} loop); servers: subprocesses. "
            "They share this machine's CPUs, so figures include the generator's own cost.")
        if not args.no_baseline:
            baseline = bench_baseline(args, tmp, cleanups)
        for backend in args.backends:
            runs.append(bench_backend(args, backend, tmp, cleanups))
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        code = 130
    except Exception as exc:  # noqa: BLE001
        log(f"benchmark failed: {type(exc).__name__}: {exc}")
        code = 1
    finally:
        for fn in reversed(cleanups):
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001
                log(f"cleanup step failed: {type(exc).__name__}: {exc}")
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if code == 130:
        return code
    if baseline is None and not runs:
        log("nothing was measured")
        return code or 1

    for r in runs:
        if r.log_findings:
            log(f"[{r.backend}] server log has {len(r.log_findings)} warning/error line(s); first ones:")
            for line in list(dict.fromkeys(r.log_findings))[:8]:
                log(f"    {line[:300]}")
    facts = machine_facts(pg_version)
    facts["Load at start"] = load_at_start
    print()
    print(f"<!-- bench/api.py, {time.strftime('%Y-%m-%d')}, {time.monotonic() - started:.0f} s run -->")
    print(markdown(args, facts, baseline, runs))
    return code


async def _pg_version(admin_url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(admin_url), timeout=5)
    try:
        return await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
