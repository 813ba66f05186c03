"""What every ``byourside`` subcommand shares: settings from the arguments, running a
command on an event loop, opening the store, and finding an account by name."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, Awaitable, Callable

from byourside_server.errors import CliError, StoreUnavailable
from byourside_server.settings import Settings

__all__ = ["CliError", "find_account", "run_async", "settings_from_args", "with_store"]


def settings_from_args(args: argparse.Namespace) -> Settings:
    """``BYS_*`` settings, with the command's ``--host``/``--port`` over them."""
    overrides: dict[str, Any] = {}
    for name in ("host", "port"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    return Settings(**overrides)


def run_async(command: Callable[[Settings, argparse.Namespace], Awaitable[int | None]], args: argparse.Namespace) -> int:
    """Run an ``async (settings, args)`` command with logging configured; Ctrl-C exits 130."""
    from byourside_server.logs import configure_logging

    settings = settings_from_args(args)
    configure_logging(settings.log_level, settings.log_json)
    try:
        return asyncio.run(command(settings, args)) or 0
    except KeyboardInterrupt:
        return 130


async def with_store(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Open the store (schema brought up to date), run ``work(services)``, close it."""
    from byourside_server.server import prepare

    try:
        services = await prepare(settings)
    except StoreUnavailable:
        raise CliError("The database is unavailable. Check BYS_DATABASE_URL and that the server is running.") from None
    try:
        return await work(services)
    finally:
        await services.aclose()


async def find_account(services: Any, name: str) -> Any:
    """The account called ``name``, or a CliError naming the command that creates it."""
    from byourside_server.store.accounts import AccountNotFound

    try:
        return await services.accounts.by_name(name)
    except AccountNotFound:
        raise CliError(f"No account named '{name}'. Create it with: byourside accounts create {name}") from None
