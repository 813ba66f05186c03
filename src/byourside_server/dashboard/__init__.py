"""The web dashboard at /dashboard: server-rendered Jinja2 pages, live over server-sent events, every asset served
by us (docs/ARCHITECTURE.md, "The dashboard"). ``mount_dashboard`` is its one entry point."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from byourside_server.services import Services

STATIC_DIR = Path(__file__).parent / "static"


def mount_dashboard(app: FastAPI, services: Services) -> None:
    """Serve the dashboard at /dashboard (``/`` redirects there), its static files, and
    /docs and /redoc with locally served assets (create_app turns FastAPI's CDN pages off)."""
    from byourside_server.api.recording_links import load_signing_secret
    from byourside_server.dashboard.api_docs import add_api_docs
    from byourside_server.dashboard.auth import DashboardContext, csrf_key_from
    from byourside_server.dashboard.calls import router as calls_router
    from byourside_server.dashboard.developers import router as developers_router
    from byourside_server.dashboard.place import router as place_router
    from byourside_server.dashboard.suppressions import router as suppressions_router
    from byourside_server.dashboard.usage import router as usage_router
    from byourside_server.dashboard.routes import router
    from byourside_server.dashboard.users import UserRepo

    settings = services.settings
    app.state.dashboard = DashboardContext(
        services=services,
        users=UserRepo(services.db, services.clock),
        csrf_key=csrf_key_from(load_signing_secret(settings.signing_secret, settings.data_dir)),
    )
    app.include_router(router)
    app.include_router(calls_router)
    app.include_router(developers_router)
    app.include_router(place_router)
    app.include_router(usage_router)
    app.include_router(suppressions_router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    add_api_docs(app)

    @app.get("/", include_in_schema=False)
    async def _root() -> RedirectResponse:
        return RedirectResponse("/dashboard", status_code=307)
