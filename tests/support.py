"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from byourside_server.clock import Clock, SystemClock
from byourside_server.services import Services, build_services
from byourside_server.settings import Settings

PG_ADMIN_URL = os.environ.get("BYS_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
TABLES = ["call_events", "idempotency_keys", "phone_numbers", "calls", "api_keys", "accounts",
          "dashboard_sign_in_failures"]


def make_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "database_url": database_url,
        "sim_time_scale": 0.0,
        "poll_seconds": 0.05,
        "heartbeat_seconds": 0.2,
        "webhook_allow_private": True,
        "webhook_allow_http": True,
    }
    values.update(overrides)
    return Settings(**values)


async def open_services(database_url: str, tmp_path: Path, clock: Clock | None = None, **overrides: object) -> Services:
    services = build_services(make_settings(database_url, tmp_path, **overrides), clock=clock or SystemClock())
    await services.db.migrate()
    if not services.db.is_sqlite:
        from sqlalchemy import text

        async with services.db.write() as conn:
            await conn.execute(text("TRUNCATE " + ", ".join(TABLES) + " CASCADE"))
    return services


async def new_account(services: Services, name: str | None = None, caller_id: str = "+14155550100"):
    """An account with a caller ID and a key; returns (account, key secret)."""
    account = await services.accounts.create(name or f"acct-{uuid.uuid4().hex[:8]}", services.default_limits)
    await services.accounts.add_number(account.id, caller_id, make_default=True)
    _, secret = await services.accounts.create_key(account.id)
    return await services.accounts.get(account.id), secret


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class running:
    """Run loops (call workers, delivery loops) for the duration of a block, then stop them."""

    def __init__(self, *loops):
        self.loops = loops

    async def __aenter__(self):
        self.tasks = [asyncio.create_task(loop.run()) for loop in self.loops]
        return self

    async def __aexit__(self, *exc):
        for loop in self.loops:
            loop.stop()
        await asyncio.wait_for(asyncio.gather(*self.tasks), timeout=15)


async def conduct_call(services: Services, account, telephony, brain, body: dict, *,  # noqa: ANN001
                       ring_timeout_seconds: float = 15.0, timeout: float = 300.0):
    """Place ``body`` for ``account`` and conduct it with one real worker until it ends; the ended call.

    ``timeout`` is a safety net for a slow machine, not a speed requirement.
    """
    from byourside_server.api.requests import validate_call_request
    from byourside_server.domain import TERMINAL_STATUSES
    from byourside_server.placement import place_call
    from byourside_server.runtime.session import SessionDeps
    from byourside_server.runtime.worker import Worker

    keys = await services.accounts.list_keys(account.id)
    call_id = (await place_call(services, account, keys[0], validate_call_request(body))).call.id
    deps = SessionDeps(calls=services.calls, telephony=telephony, brain=brain,
                       ring_timeout_seconds=ring_timeout_seconds)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with running(Worker(services, deps, concurrency=1)):
        while (call := await services.calls.get(account.id, call_id)).status not in TERMINAL_STATUSES:
            if loop.time() > deadline:
                raise AssertionError(f"the call is still {call.status.value} after {timeout} s")
            await asyncio.sleep(0.05)
    return call


def write_self_signed(directory: Path, name: str, ips: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A self-signed certificate (also its own CA) for ``name`` and ``ips``, and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName(name)] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file
