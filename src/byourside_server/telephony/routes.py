"""HTTP and WebSocket routes a telephony provider contributes to the server (carrier callbacks, media).

A carrier reached over the internet (Twilio) calls us back: status callbacks
and the call's media WebSocket. Its provider returns those routes from
``Telephony.carrier_routes()``; the composition root (server.py) mounts them,
so ``api/`` never knows a carrier exists:

- ``byourside serve`` (API and workers in one process) mounts them on its app;
- ``byourside worker`` serves them itself on ``BYS_HOST:BYS_PORT``, because the
  media of a call must reach the process that placed it: the provider puts that
  worker's own ``BYS_PUBLIC_URL`` in every callback and stream URL it gives the
  carrier;
- ``byourside serve --no-workers`` places no calls and mounts none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route


class PublicUrlMissing(ValueError):
    """A carrier needs BYS_PUBLIC_URL to call us back."""


@dataclass(frozen=True)
class CarrierRoutes:
    prefix: str  # e.g. "/carriers/twilio": every route below it
    routes: Sequence[BaseRoute]

    def mount(self) -> Mount:
        return Mount(self.prefix, routes=list(self.routes))


def carrier_routes_of(telephony: Any) -> CarrierRoutes | None:
    """The routes of a provider (a ``telephony.base.Telephony``), looking through wrappers that expose the
    wrapped provider as ``carrier`` (voice/telephony.py: VoicedTelephony)."""
    seen = telephony
    while seen is not None:
        routes = seen.carrier_routes()
        if routes is not None:
            return routes
        seen = getattr(seen, "carrier", None)
    return None


def carrier_app(routes: CarrierRoutes) -> Starlette:
    """What a ``byourside worker`` process serves: its carrier's routes and a health check."""

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/healthz", healthz), routes.mount()])


def require_public_url(public_url: str | None, provider: str) -> str:
    """BYS_PUBLIC_URL without a trailing slash, or a start-up error that says what to set."""
    if not public_url or not public_url.startswith(("http://", "https://")):
        raise PublicUrlMissing(
            f"set BYS_PUBLIC_URL to the https:// address at which {provider} reaches this process (its status "
            "callbacks and the call's media WebSocket), e.g. BYS_PUBLIC_URL=https://calls.example.com. "
            "With separate worker processes, give each worker its own address. See docs/carriers.md."
        )
    return public_url.rstrip("/")


def websocket_url(http_url: str) -> str:
    """The ws:// or wss:// form of an http(s) URL."""
    return "wss://" + http_url[len("https://"):] if http_url.startswith("https://") else "ws://" + http_url[len("http://"):]
