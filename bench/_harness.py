"""Helpers for bench/api.py: processes, ports, the baseline app, statistics, store readers, machine facts.

Nothing here asserts anything about speed; it only measures and describes.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# Processes and ports


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process we own: logs to a file, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            except ProcessLookupError:
                pass
        self._log.close()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def wait_http_ok(proc: Proc, url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited early (code {proc.process.returncode}):\n{proc.log()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout:.0f} s:\n{proc.log()[-4000:]}")


# A minimal HTTP/1.1 keep-alive client (the default load generator: cheap enough not to be the bottleneck)


class RawHTTPError(Exception):
    pass


class _StaleConnection(RawHTTPError):
    pass


class RawResponse:
    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class RawClient:
    """``get``/``post`` like httpx.AsyncClient's, over at most ``max_connections`` persistent connections.

    Supports exactly what the benchmark needs: Content-Length and chunked bodies,
    keep-alive, ``Connection: close``. About 20x less client CPU per request than
    httpx on the machine this was written on, so the server, not the generator, is measured.
    """

    def __init__(self, base_url: str, max_connections: int, headers: dict[str, str] | None = None,
                 timeout: float = 30.0) -> None:
        hostport = base_url.split("://", 1)[1].rstrip("/")
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._common = f"Host: {hostport}\r\n{extra}".encode("latin-1")
        self._idle: list[_Conn] = []
        self._open = 0
        self._available = asyncio.Semaphore(max_connections)
        self.timeout = timeout

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    async def get(self, path: str) -> RawResponse:
        return await self.request(b"GET", path, b"", None)

    async def post(self, path: str, content: bytes = b"", headers: dict[str, str] | None = None) -> RawResponse:
        return await self.request(b"POST", path, content, headers)

    async def request(self, method: bytes, path: str, body: bytes, headers: dict[str, str] | None) -> RawResponse:
        head = method + b" " + path.encode() + b" HTTP/1.1\r\n" + self._common
        if headers:
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1")
        if body or method == b"POST":
            head += b"content-length: " + str(len(body)).encode() + b"\r\n"
        data = head + b"\r\n" + body
        async with self._available:
            conn = self._idle.pop() if self._idle else None
            try:
                async with asyncio.timeout(self.timeout):
                    if conn is not None:
                        try:
                            conn.writer.write(data)
                            response, keep = await self._read(conn.reader)
                        except _StaleConnection:
                            # The server closed an idle keep-alive connection before reading
                            # this request (uvicorn does after 5 s): retry once on a new one.
                            conn.close()
                            conn = None
                    if conn is None:
                        conn = _Conn(*await asyncio.open_connection(self.host, self.port))
                        conn.writer.write(data)
                        response, keep = await self._read(conn.reader)
            except BaseException:
                if conn is not None:
                    conn.close()
                raise
            if keep:
                self._idle.append(conn)
            else:
                conn.close()
            return response

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[RawResponse, bool]:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise _StaleConnection("connection closed before a response") from exc
            raise RawHTTPError("connection closed in the middle of a response") from exc
        except ConnectionResetError as exc:
            raise _StaleConnection("connection reset before a response") from exc
        lines = raw[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise RawHTTPError(f"bad status line {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            content = b"".join(chunks)
        else:
            raise RawHTTPError("response without Content-Length or chunked encoding")
        keep = headers.get("connection", "").lower() != "close"
        return RawResponse(int(parts[1]), headers, content), keep


# The baseline: a bare FastAPI app served exactly the way `byourside serve` serves ours


def serve_baseline(port: int) -> None:
    """Run in a subprocess: `python bench/api.py _baseline PORT`.

    Mirrors byourside_server.server.run_server: uvicorn.Config with defaults
    (http="auto" -> httptools when installed), log_config=None, access_log=False,
    lifespan="off", single process, awaited inside asyncio.run() like the CLI does,
    so it runs on the same (stdlib asyncio) event loop as `byourside serve`.
    """
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.requests import Request

    app = FastAPI()

    @app.get("/hello")
    async def hello() -> JSONResponse:
        return JSONResponse({"ok": True})

    async def echo(request):
        body = await request.json()
        return JSONResponse(body, status_code=201)

    echo.__annotations__ = {"request": Request, "return": JSONResponse}
    app.post("/echo")(echo)

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        asyncio.run(server.serve())
    except KeyboardInterrupt:
        pass


# CPU accounting: where the machine's CPU time went during a measured window


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def _machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds summed over all CPUs since boot."""
    try:
        parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)  # idle + iowait
    total = sum(parts[:8])  # guest time is already in user
    return (total - idle) / _TICK, total / _TICK


def postgres_backend_pids(database: str) -> list[int]:
    """PostgreSQL backends serving ``database`` (their process title names it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            pids.append(int(entry.name))
    return pids


@dataclass
class CpuWindow:
    wall: float
    server: float
    generator: float
    database: float | None
    machine_busy: float
    machine_total: float

    @property
    def cpus(self) -> float:
        return self.machine_total / self.wall if self.wall else 0.0

    @property
    def other(self) -> float:
        return max(0.0, self.machine_busy - self.server - self.generator - (self.database or 0.0))

    def share(self, seconds: float | None) -> str:
        if seconds is None or not self.machine_total:
            return "-"
        return f"{seconds / self.machine_total * 100:.0f}%"


class CpuMeter:
    """Samples CPU seconds of the server process, this process, the database backends and the whole machine."""

    def __init__(self, server_pid: int, pg_database: str | None = None) -> None:
        self.server_pid = server_pid
        self.pg_database = pg_database
        self._start: tuple | None = None

    def _sample(self) -> tuple:
        own = os.times()
        pids: dict[int, float] = {}
        if self.pg_database:
            for pid in postgres_backend_pids(self.pg_database):
                cpu = _proc_cpu_seconds(pid)
                if cpu is not None:
                    pids[pid] = cpu
        busy, total = _machine_busy_seconds()
        return (time.perf_counter(), _proc_cpu_seconds(self.server_pid) or 0.0, own.user + own.system, pids, busy, total)

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> CpuWindow:
        assert self._start is not None
        a, b = self._start, self._sample()
        db = None
        if self.pg_database:
            # Pooled backends live through the window; one born inside it counts from zero.
            db = sum(cpu - a[3].get(pid, 0.0) for pid, cpu in b[3].items())
        return CpuWindow(
            wall=b[0] - a[0], server=b[1] - a[1], generator=b[2] - a[2], database=db,
            machine_busy=b[4] - a[4], machine_total=b[5] - a[5],
        )


def machine_load_note() -> str:
    """The load average right now (1, 5, 15 min), to judge whether the machine was quiet."""
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return "unknown"
    return "load average " + " / ".join(load) + " (1 / 5 / 15 min)"


# Statistics


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


@dataclass
class LoadResult:
    label: str
    duration: float
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)  # successful (2xx) requests only
    errors: dict[str, int] = field(default_factory=dict)  # "HTTP 503" / exception name -> count
    error_samples: list[str] = field(default_factory=list)
    cpu: CpuWindow | None = None

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def requests(self) -> int:
        return self.ok + self.error_count

    @property
    def throughput(self) -> float:
        return self.ok / self.duration if self.duration else 0.0

    def pct(self, q: float) -> float:
        return percentile(sorted(self.latencies_ms), q)

    @property
    def server_cpu_ms_per_request(self) -> float:
        if self.cpu is None or not self.requests:
            return float("nan")
        return self.cpu.server / self.requests * 1000

    @property
    def max_ms(self) -> float:
        return max(self.latencies_ms) if self.latencies_ms else float("nan")


def summarize_ms(values: Iterable[float]) -> dict[str, float]:
    data = sorted(values)
    return {
        "n": len(data),
        "p50": percentile(data, 50),
        "p90": percentile(data, 90),
        "p99": percentile(data, 99),
        "max": data[-1] if data else float("nan"),
    }


# Reading call timings straight from the store (read-only)


def _as_dt(value: Any) -> datetime | None:
    """Naive UTC (the store writes UTC; SQLite hands back text, PostgreSQL naive timestamps)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


class StoreReader:
    """Reads calls.created_at / dial_started_at / status, never writes."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.sqlite_path = database_url.split("///", 1)[1] if database_url.startswith("sqlite") else None
        self._pg = None

    async def open(self) -> None:
        if self.sqlite_path is None:
            import asyncpg

            self._pg = await asyncpg.connect(pg_dsn(self.url), timeout=5)
            await self._pg.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
            self._pg = None

    def _sqlite(self, sql: str, args: tuple = ()) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    async def _query(self, sql: str) -> list[tuple]:
        if self.sqlite_path is not None:
            return await asyncio.to_thread(self._sqlite, sql)
        assert self._pg is not None
        return [tuple(r) for r in await self._pg.fetch(sql)]

    async def status_counts(self) -> dict[str, int]:
        return dict(await self._query("SELECT status, COUNT(*) FROM calls GROUP BY status"))

    async def call_times(self) -> dict[str, tuple[datetime, datetime | None, str]]:
        rows = await self._query("SELECT id, created_at, dial_started_at, status FROM calls")
        return {r[0]: (_as_dt(r[1]), _as_dt(r[2]), r[3]) for r in rows}


def pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


# Machine facts


def machine_facts(postgres_version: str | None) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        m = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        if m:
            ram = f"{int(m.group(1)) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    try:
        nproc = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        nproc = str(os.cpu_count())
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for dist in ("fastapi", "starlette", "uvicorn", "httptools", "uvloop", "sqlalchemy", "aiosqlite", "asyncpg", "httpx"):
        try:
            versions.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            continue
    return {
        "CPU": f"{cpu}, nproc={nproc}",
        "RAM": ram,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": postgres_version or "not measured",
        "Packages": ", ".join(versions),
    }
