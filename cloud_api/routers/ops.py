"""Health and metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from cloud_api.deps import CtxDep
from cloud_api.metrics import CONTENT_TYPE
from cloud_api.schemas.activity import HealthPublic

router = APIRouter(tags=["Ops"])


@router.get(
    "/healthz",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "The database does not answer"}},
)
def healthz(ctx: CtxDep) -> JSONResponse:
    """Liveness and readiness: the database answers; MQTT state is reported, not required."""
    database_ok = True
    try:
        ctx.db.ping()
    except Exception:
        database_ok = False
    mqtt: Literal["connected", "disconnected", "disabled"] = "disabled"
    if ctx.sync is not None:
        mqtt = "connected" if ctx.sync.connected else "disconnected"
    health = HealthPublic(
        status="ok" if database_ok else "degraded",
        database="ok" if database_ok else "unavailable",
        mqtt=mqtt,
        ingest=ctx.sync is not None and ctx.sync.ingesting,
    )
    return JSONResponse(health.model_dump(by_alias=True), status_code=200 if database_ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
)
def metrics(ctx: CtxDep) -> Response:
    """Prometheus metrics: request latency, ingest rate, gateways online, desired-state publish
    lag, commands."""
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)
