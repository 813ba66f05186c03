"""Operator endpoints: ``GET /healthz`` and ``GET /metrics`` (Prometheus text)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from byourside_server import __version__
from byourside_server.api.common import services_of
from byourside_server.api.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from byourside_server.api.metrics import render as render_metrics
from byourside_server.errors import Unauthorized
from byourside_server.mcp.http import bearer_secret

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    ok = await services_of(request).db.ping()
    return JSONResponse({"ok": ok, "version": __version__}, status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response,
            responses={401: {"description": "BYS_METRICS_TOKEN is set and the request does not carry it"}})
async def metrics(request: Request) -> Response:
    services = services_of(request)
    settings = services.settings
    token = settings.metrics_token
    if token and not hmac.compare_digest(bearer_secret(request.headers).encode(), token.encode()):
        raise Unauthorized("Send 'Authorization: Bearer <BYS_METRICS_TOKEN>' to read /metrics.")
    snapshot = await services.calls.metrics(settings.metrics_window_seconds)
    return Response(render_metrics(snapshot, settings.metrics_window_seconds), media_type=METRICS_CONTENT_TYPE)
