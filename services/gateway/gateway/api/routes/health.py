"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from gateway import stuck_tasks
from gateway.api.deps import StateDep
from gateway.broker_view import queue_names
from gateway.dead_letter_counts import refresh_gauge
from gateway.health_monitor import refresh_gauges

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}
                }
            }
        },
        503: {"description": "A dependency is not reachable."},
    },
)
async def readyz(state: StateDep) -> JSONResponse:
    """Ready when the database answers and the broker connection is open."""
    checks: dict[str, Any] = {}
    try:
        async with state.host.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    checks["broker"] = "ok" if not state.host.connection.is_closed else "error: disconnected"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/plain": {
                    "example": 'prs_tasks_total{service="gateway",type="diagnostic.ping",'
                    'outcome="succeeded"} 12.0\n'
                }
            }
        }
    },
)
async def metrics(state: StateDep) -> Response:
    """Prometheus metrics of this gateway process, the dead letters waiting in its archive and
    the tasks flagged as stalled and the latest scheduled health check."""
    async with state.host.sessions() as session:
        await refresh_gauge(session, queue_names(state.host.topology))
        await stuck_tasks.refresh_gauge(session)
        await refresh_gauges(session)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
