"""Running byourside: the API and/or workers on one event loop."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from contextlib import contextmanager, suppress
from typing import Iterator

import structlog
import uvicorn

from byourside_server.api.app import create_app
from byourside_server.compliance.consent import ConsentPolicy
from byourside_server.runtime.registry import build_brain, build_telephony
from byourside_server.runtime.session import SessionDeps
from byourside_server.runtime.worker import Worker
from byourside_server.services import Services, build_services
from byourside_server.settings import Settings
from byourside_server.telephony.routes import carrier_app, carrier_routes_of
from byourside_server.webhooks.delivery import DeliveryWorker

log = structlog.get_logger(__name__)

DEFAULT_ACCOUNT = "default"
DEFAULT_SIMULATOR_CALLER_ID = "+14155550100"


async def prepare(settings: Settings) -> Services:
    """Open the store and bring its schema up to date."""
    services = build_services(settings)
    await services.db.migrate()
    return services


async def bootstrap_default_account(services: Services) -> bool:
    """On an empty store, create account 'default' owning a simulator caller ID."""
    if await services.accounts.count() > 0:
        return False
    account = await services.accounts.create(DEFAULT_ACCOUNT, services.default_limits)
    await services.accounts.add_number(account.id, DEFAULT_SIMULATOR_CALLER_ID, make_default=True)
    return True


def build_worker(services: Services) -> Worker:
    settings = services.settings
    deps = SessionDeps(
        calls=services.calls,
        telephony=build_telephony(settings, services.clock),
        brain=build_brain(settings),
        ring_timeout_seconds=settings.ring_timeout_seconds,
        recordings=services.recordings,
        gate=services.compliance,
        consent=ConsentPolicy.from_settings(settings),
    )
    return Worker(services, deps, concurrency=settings.workers)


def build_delivery(services: Services, worker_id: str) -> DeliveryWorker | None:
    """The webhook delivery loop that runs beside a call worker (None if BYS_WEBHOOK_DELIVERY=false)."""
    if not services.settings.webhook_delivery:
        return None
    return DeliveryWorker(services, worker_id=worker_id)


async def run_server(
    services: Services,
    *,
    with_workers: bool,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve HTTP (and run workers) until SIGINT/SIGTERM; workers finish calls in hand first."""
    settings = services.settings
    worker = build_worker(services) if with_workers else None
    app = create_app(services)
    carrier = carrier_routes_of(worker.deps.telephony) if worker else None
    if carrier is not None:  # the carrier calls back the process that placed the call: this one
        app.router.routes.append(carrier.mount())
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                            lifespan="off")
    server = _GracefulServer(config)
    app.state.shutting_down = lambda: server.should_exit  # live dashboard streams end so shutdown can finish
    worker_task = asyncio.create_task(worker.run()) if worker else None
    delivery = build_delivery(services, worker.worker_id) if worker else None
    delivery_task = asyncio.create_task(delivery.run()) if delivery else None
    serve_task = asyncio.create_task(server.serve())
    stopper = asyncio.create_task(_stop_when_set(stop, server)) if stop is not None else None
    if ready is not None:
        while not server.started and not serve_task.done():
            await asyncio.sleep(0.02)
        ready.set()
    try:
        await serve_task
        if stopper:
            stopper.cancel()
    finally:
        if worker and worker_task:
            worker.stop()
            await worker_task
            await worker.deps.telephony.aclose()
            await worker.deps.brain.aclose()
        if delivery and delivery_task:
            delivery.stop()
            await delivery_task
        await services.aclose()


class _GracefulServer(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM once its HTTP shutdown is done, which would end the
    process before the workers finish their calls and the webhook loop its attempts. Here the
    signal only asks to stop; ``run_server`` then stops the loops and returns."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


async def _stop_when_set(stop: asyncio.Event, server: uvicorn.Server) -> None:
    await stop.wait()
    server.should_exit = True


async def run_worker_only(services: Services) -> None:
    worker = build_worker(services)
    delivery = build_delivery(services, worker.worker_id)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, worker.stop)
    delivery_task = asyncio.create_task(delivery.run()) if delivery else None
    carrier_server = _carrier_server(worker, services.settings)
    carrier_task = asyncio.create_task(carrier_server.serve()) if carrier_server else None
    try:
        await worker.run()
    finally:
        if carrier_server and carrier_task:  # after the calls in hand: their media flows through it
            carrier_server.should_exit = True
            await carrier_task
        await worker.deps.telephony.aclose()
        await worker.deps.brain.aclose()
        if delivery and delivery_task:
            delivery.stop()
            await delivery_task
        await services.aclose()


def _carrier_server(worker: Worker, settings: Settings) -> uvicorn.Server | None:
    """A worker whose carrier calls it back (status callbacks, media WebSockets) serves those routes itself on
    BYS_HOST:BYS_PORT, the address BYS_PUBLIC_URL names (telephony/routes.py)."""
    carrier = carrier_routes_of(worker.deps.telephony)
    if carrier is None:
        return None
    config = uvicorn.Config(carrier_app(carrier), host=settings.host, port=settings.port, log_config=None,
                            access_log=False, lifespan="off")
    return _SignallessServer(config)


class _SignallessServer(uvicorn.Server):
    """Leaves SIGINT/SIGTERM to the worker, which stops this server once its calls are over."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def print_err(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)
