"""The host dashboard: server-rendered pages at `/` and `/app/...`, logged in with a session
cookie carrying a token of the API's own token system; live updates over server-sent events."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from cloud_api.dashboard import actions, locks, pages, property_settings, stream, tasks, team
from cloud_api.dashboard.render import STATIC, STATIC_URL
from cloud_api.dashboard.routing import DashboardRoute, error_page

fallback = APIRouter(route_class=DashboardRoute, include_in_schema=False)


@fallback.get("/app/{rest:path}")
def not_found(rest: str, request: Request) -> Response:
    """Any other dashboard address: a page, not the API's JSON."""
    return error_page(request, 404, "There is no such page. It may have moved.", "Not found")


def install(app: FastAPI) -> None:
    """Serve the dashboard from `app` (its routes stay out of the OpenAPI document)."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC), name="dashboard-static")
    for router in (
        pages.router,
        actions.router,
        property_settings.router,
        team.router,
        locks.router,
        tasks.router,
        stream.router,
        fallback,
    ):
        app.include_router(router)
