"""Cross-process wake-ups on PostgreSQL: LISTEN/NOTIFY.

The API sends ``pg_notify`` inside the transaction that queues or cancels a
call (PostgreSQL delivers it on commit); workers in other processes listen and
set their in-process signals, so they react within milliseconds instead of at
their next poll. Polling stays as the safety net: a lost notification only
costs latency, never a call.
"""

from __future__ import annotations

import asyncio
from typing import Callable

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

log = structlog.get_logger(__name__)

CALL_QUEUED = "bys_call_queued"
CANCEL_REQUESTED = "bys_cancel_requested"


async def notify(conn: AsyncConnection, channel: str) -> None:
    """Queue a notification on ``channel``; sent when the surrounding transaction commits."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


async def listen_forever(dsn: str, handlers: dict[str, Callable[[], None]], *, retry_seconds: float = 2.0) -> None:
    """Hold a dedicated connection LISTENing on each channel; reconnect after failures."""
    import asyncpg

    while True:
        conn = None
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
            for channel, handler in handlers.items():
                await conn.add_listener(channel, lambda *_args, _h=handler: _h())
            # Wake everyone once after (re)connecting: something may have been missed meanwhile.
            for handler in handlers.values():
                handler()
            while not conn.is_closed():
                await asyncio.sleep(retry_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection trouble: polling covers the gap
            log.warning("notify_listener_reconnecting", error=type(exc).__name__)
        finally:
            if conn is not None and not conn.is_closed():
                await conn.close()
        await asyncio.sleep(retry_seconds)


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)
