"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cloud_api import dashboard
from cloud_api.context import AppContext
from cloud_api.db import Database, migrate
from cloud_api.errors import install_error_handlers
from cloud_api.keys import load_keys
from cloud_api.metrics import Metrics
from cloud_api.middleware import BodyLimit, RequestLog
from cloud_api.routers import (
    auth,
    bookings,
    gateways,
    integrations,
    members,
    ops,
    properties,
    smartlocks,
    tasks,
    timeline,
)
from cloud_api.services.gateways import count_gateways
from cloud_api.services.revocation import Revocations
from cloud_api.settings import Settings
from cloud_api.sync.service import SyncService

log = logging.getLogger(__name__)

CRL_REFRESH_INTERVAL_S = 24 * 3600.0  # the CRL is valid 30 days; re-sign it daily


async def _refresh_crl_forever(ctx: AppContext) -> None:
    while True:
        await asyncio.sleep(CRL_REFRESH_INTERVAL_S)
        try:
            await asyncio.to_thread(ctx.revocations.refresh)
        except Exception:
            log.exception("refreshing the CRL failed")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    ctx: AppContext = app.state.ctx
    await asyncio.to_thread(ctx.revocations.refresh)
    crl_task = asyncio.create_task(_refresh_crl_forever(ctx), name="kasify-crl-refresh")
    if ctx.settings.mqtt_enabled:
        ctx.sync = SyncService(
            ctx.settings, ctx.db, ctx.keys, ctx.metrics, ingest=ctx.settings.serve_ingest
        )
        await ctx.sync.start()
    try:
        yield
    finally:
        if ctx.sync is not None:
            await ctx.sync.stop()
            ctx.sync = None
        crl_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await crl_task


def create_app(settings: Settings) -> FastAPI:
    """An app on an initialised data directory; migrates the database to the latest schema."""
    keys = load_keys(settings.data_dir)
    db = Database(settings.db_url)
    migrate(db.engine)
    metrics = Metrics()
    metrics.watch_gateways(lambda: count_gateways(db))
    ctx = AppContext(
        settings=settings,
        db=db,
        keys=keys,
        revocations=Revocations(db, keys, settings.reload_argv),
        metrics=metrics,
    )
    app = FastAPI(
        title="Kasify Edge cloud API",
        version="0.2.0",
        description="Properties, members, bookings, access codes, check-in, tasks, smart locks, "
        "integrations, gateways, calendar and activity. Errors are JSON `{detail}`; a 422 also "
        "lists `errors: [{field, message}]`. Lists are paginated with zero-based `page` and "
        "`size` (max 100).",
        lifespan=_lifespan,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestLog, metrics=metrics)
    for router in (
        auth.router,
        properties.router,
        members.router,
        gateways.router,
        smartlocks.router,
        integrations.router,
        bookings.router,
        bookings.codes_router,
        bookings.checkin_router,
        tasks.router,
        timeline.router,
        timeline.timeline_router,
        ops.router,
    ):
        app.include_router(router)
    dashboard.install(app)
    return app
