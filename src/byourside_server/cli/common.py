"""What every ``byourside`` subcommand shares: settings from the arguments, running a
command on an event loop, opening the store (saying which one), and finding an account by name."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from byourside_server.errors import CliError, StoreUnavailable
from byourside_server.settings import Settings

__all__ = ["CliError", "describe_store", "find_account", "run_async", "settings_from_args", "sqlite_store_path", "with_store"]


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


def sqlite_store_path(settings: Settings) -> Path | None:
    """The SQLite store's file, or None for a server database (PostgreSQL) or an in-memory one."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.effective_database_url)
    if not url.drivername.startswith("sqlite") or not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return None
    return Path(url.database).resolve()


def describe_store(settings: Settings) -> str:
    """The store as one line for a person: ``sqlite:///<absolute path>``, or the URL with its password masked."""
    from sqlalchemy.engine import make_url

    path = sqlite_store_path(settings)
    if path is not None:
        return f"sqlite:///{path}"
    return make_url(settings.effective_database_url).render_as_string(hide_password=True)


def missing_store_message(path: Path) -> str:
    return (f"No byourside store at {path}. Admin commands use the store of the folder they run in "
            f"(BYS_DATA_DIR, default ./.byourside). Run this from the folder where 'byourside serve' runs, "
            f"or set BYS_DATA_DIR (or BYS_DATABASE_URL) to the server's store; "
            f"'byourside migrate' creates a new empty store here.")


async def with_store(settings: Settings, work: Callable[[Any], Awaitable[Any]], *, create: bool = False) -> Any:
    """Open the store (schema brought up to date), run ``work(services)``, close it.

    The store in use is named on stderr. A missing SQLite file is refused unless ``create``:
    an admin command run from the wrong folder would otherwise mint keys into a new empty
    store that the running server never reads."""
    from byourside_server.server import prepare

    print(f"byourside: store {describe_store(settings)}", file=sys.stderr)
    path = sqlite_store_path(settings)
    if path is not None and not create and not path.exists():
        raise CliError(missing_store_message(path))
    try:
        services = await prepare(settings)
    except StoreUnavailable:
        raise CliError("The database is unavailable. Check BYS_DATABASE_URL and that the server is running.") from None
    except SQLAlchemyError as exc:  # e.g. a role or database the server does not know
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CliError(f"Cannot open the store {describe_store(settings)}: {reason}") from None
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
