"""``byourside demo``: a private server on SQLite + the phone simulator, one call, the result.

The server (API and workers) runs on its own event loop in a background thread;
the main thread is an ordinary client using the Python SDK over HTTP, exactly
as a user's program would. In a terminal (or with ``--stay``) the server then keeps
running and the demo prints a one-time link that signs into the dashboard on the
demo call's page; ``--exit`` (or output to a pipe) ends it after the call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import socket
import sys
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from byourside_server.cli.client import error_text, follow, load_sdk
from byourside_server.logs import configure_logging
from byourside_server.services import Services
from byourside_server.settings import Settings

DEMO_TO = "+14155550123"
DEMO_OBJECTIVE = "Find out whether they have a table for two tonight at 7pm and how much the tasting menu costs."
DEMO_FIELDS = [
    {"name": "table_available", "type": "boolean", "description": "whether a table for two is free tonight at 7pm"},
    {"name": "tasting_menu_price", "type": "number", "description": "the price of the tasting menu per person, in dollars"},
]
DEMO_USER_EMAIL = "demo@example.com"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoServer(threading.Thread):
    """Runs a fresh server in a thread; ``key`` is set once it is ready."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="byourside-demo-server", daemon=True)
        self.settings = settings
        self.key: str | None = None
        self.sign_in_token: str | None = None  # a one-time dashboard link for demo@example.com
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        from byourside_server.server import DEFAULT_SIMULATOR_CALLER_ID, prepare, run_server

        services = await prepare(self.settings)
        account = await services.accounts.create("demo", services.default_limits)
        await services.accounts.add_number(account.id, DEFAULT_SIMULATOR_CALLER_ID, make_default=True)
        _, self.key = await services.accounts.create_key(account.id, name="demo")
        self.sign_in_token = await _demo_sign_in_token(services, account.id)
        self._loop, self._stop_event = asyncio.get_running_loop(), asyncio.Event()
        started = asyncio.Event()
        runner = asyncio.create_task(run_server(services, with_workers=True, ready=started, stop=self._stop_event))
        await started.wait()
        self.ready.set()
        await runner

    def shutdown(self) -> None:
        if self._loop and self._stop_event:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self.join(timeout=30)


async def _demo_sign_in_token(services: Services, account_id: str) -> str:
    from byourside_server.dashboard.users import UserRepo

    users = UserRepo(services.db, services.clock)
    user = await users.create(account_id, DEMO_USER_EMAIL)
    return await users.issue_link(user.id, timedelta(minutes=services.settings.dashboard_link_minutes))


def _stays_up(args: argparse.Namespace) -> bool:
    """Keep serving after the call with --stay, or by default when a person watches a terminal."""
    if args.stay is not None:
        return args.stay
    return sys.stdin.isatty() and sys.stdout.isatty()


def _serve_until_interrupted(out) -> None:  # noqa: ANN001
    """Block until Ctrl+C or SIGTERM."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    out("Stopping the demo server.")


def run_demo(args: argparse.Namespace) -> int:
    base = Settings()
    data_dir = Path(base.data_dir) / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = base.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": None,
            "host": "127.0.0.1",
            "port": _free_port(),
            "telephony": "simulator",
            "brain": "offline",
            "sim_time_scale": args.time_scale,
            "log_level": "warning",
        }
    )
    configure_logging(settings.log_level, settings.log_json)
    out = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731

    out("byourside demo: starting a private server (SQLite + phone simulator + offline agent)...")
    server = DemoServer(settings)
    server.start()
    server.ready.wait(timeout=60)
    if server.error or not server.key:
        out(f"error: the demo server did not start: {server.error!r}")
        return 1
    byourside = load_sdk()
    try:
        client = byourside.Client(server.key, base_url=f"http://127.0.0.1:{settings.port}")
        out(f"Server ready on http://127.0.0.1:{settings.port}. Placing a call to the simulator's restaurant:")
        out(f"  objective: {DEMO_OBJECTIVE}")
        out("  fields:    " + ", ".join(f"{f['name']} ({f['type']})" for f in DEMO_FIELDS))
        created = client.place_call(DEMO_TO, DEMO_OBJECTIVE, fields=DEMO_FIELDS)
        out(f"Call {created['callId']} {created['status']}; following it live:")
        call = follow(client, created["callId"], timeout=300, out=out)
        out("")
        out("Finished call:")
        print(json.dumps(call, indent=2), flush=True)
        base_url = f"http://127.0.0.1:{settings.port}"
        if _stays_up(args):
            link = urlencode({"token": server.sign_in_token, "next": f"/dashboard/calls/{call['callId']}"})
            out("")
            out("See the call in the dashboard (this link signs you in once, valid "
                f"{settings.dashboard_link_minutes:g} min):")
            out(f"  {base_url}/dashboard/sign-in/link?{link}")
            out("The demo server keeps running until you press Ctrl+C.")
            _serve_until_interrupted(out)
        else:
            out("(The demo server stops now; run 'byourside demo --stay' to keep it up and get a dashboard link.)")
    except byourside.ByoursideError as exc:
        out(f"error: {error_text(exc, f'http://127.0.0.1:{settings.port}')}")
        return 1
    finally:
        server.shutdown()
    return 0 if call["status"] == "completed" else 1
