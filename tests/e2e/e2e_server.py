"""End-to-end fixtures: the real ``byourside serve`` process, driven over HTTP by the real SDK."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def dies_with_this_process():
    """A ``preexec_fn`` after which the child is SIGKILLed when this (test) process dies, even by
    SIGKILL, so no server outlives a killed pytest (Linux's PR_SET_PDEATHSIG; elsewhere nothing)."""
    parent = os.getpid()

    def in_child() -> None:
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the test process died before the request took effect
                os._exit(1)

    return in_child


def signal_group(process: subprocess.Popen, sig: int) -> None:
    """Signal the process group ``process`` leads (started with ``start_new_session=True``)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    base_url: str
    env: dict[str, str]
    process: subprocess.Popen
    log_path: Path

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / "byourside"), *args], env=self.env, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"byourside {' '.join(args)} failed: {result.stderr}")
        return result

    def new_key(self, account: str = "default") -> str:
        return self.cli("keys", "create", "--account", account).stdout.strip().splitlines()[-1]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to the server's process group, then SIGKILL what is left of it after 20 s."""
        if self.process.poll() is None:
            signal_group(self.process, sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        signal_group(self.process, signal.SIGKILL)  # the server if it hung, or a child it left behind
        self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def server_env(data_dir: Path, database_url: str | None, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BYS_")}
    env.update(
        {
            "BYS_DATA_DIR": str(data_dir),
            "BYS_PORT": str(port),
            "BYS_HOST": "127.0.0.1",
            "BYS_SIM_TIME_SCALE": "0",
            "BYS_POLL_SECONDS": "0.05",
            "BYS_HEARTBEAT_SECONDS": "0.2",
            "BYS_LOG_LEVEL": "info",
            **extra,
        }
    )
    if database_url:
        env["BYS_DATABASE_URL"] = database_url
    return env


def start_server(data_dir: Path, database_url: str | None = None, *args: str, **extra: str) -> RunningServer:
    port = free_port()
    env = server_env(data_dir, database_url, port, **extra)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{port}.log"
    log = open(log_path, "w")
    # Its own process group (stopped as a whole), killed with this process if pytest is killed.
    # (preexec_fn is safe here: fixtures start servers from the main thread.)
    process = subprocess.Popen([str(BIN / "byourside"), "serve", *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True, preexec_fn=dies_with_this_process())  # noqa: PLW1509
    server = RunningServer(f"http://127.0.0.1:{port}", env, process, log_path)
    # Generous: a busy 2-core machine can take a while to import and migrate; a healthy server answers at once.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"server did not become healthy:\n{server.log()}")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    if url:
        _reset_postgres(url)
    running = start_server(tmp_path_factory.mktemp(f"e2e-{request.param}"), url)
    yield running
    running.stop()


def _reset_postgres(url: str) -> None:
    import asyncio

    from support import TABLES
    from byourside_server.store.database import open_database
    from sqlalchemy import text

    async def reset() -> None:
        db = open_database(url)
        await db.migrate()
        async with db.write() as conn:
            await conn.execute(text("TRUNCATE " + ", ".join(TABLES) + " CASCADE"))
        await db.dispose()

    asyncio.run(reset())


@pytest.fixture(scope="module")
def client(server: RunningServer):
    import byourside

    return byourside.Client(server.new_key(), base_url=server.base_url)
