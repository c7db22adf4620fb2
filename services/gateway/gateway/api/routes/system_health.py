"""``GET /api/automated-processes/system-health/history/``: the scheduled health checks' snapshots.

Snapshots are of the whole system (every organization's queues and dead letters), so only
organization-less admin and operator keys read them; a key of an organization gets 403, as it
would for any system-wide setting.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from gateway.api.deps import SessionDep, require
from gateway.api.problems import Problem
from gateway.auth import Principal, Role
from gateway.models import HealthSnapshot

router = APIRouter(prefix="/api/automated-processes", tags=["automated processes"])

OPERATORS = require(Role.OPERATOR)


class HealthSnapshotEntry(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "snapshot_id": "5b0e4c8a-0000-4000-8000-000000000001",
                    "at": "2026-11-28T12:05:00Z",
                    "status": "unhealthy",
                    "reasons": ["SMTP server unreachable"],
                    "checks": {
                        "database": {"status": "ok", "latency_ms": 0.8},
                        "smtp": {
                            "status": "error",
                            "host": "smtp.example.com",
                            "port": 25,
                            "error": "ConnectionRefusedError",
                        },
                    },
                    "notified": "system_unhealthy",
                }
            ]
        }
    )

    snapshot_id: str
    at: datetime = Field(description="When the check ran.")
    status: Literal["healthy", "degraded", "unhealthy"]
    reasons: list[str]
    checks: dict[str, Any] = Field(description="As /system-health/ reports them.")
    notified: str | None = Field(
        description="system_unhealthy or system_recovered when this check emailed the operators."
    )


class HealthHistoryPage(BaseModel):
    items: list[HealthSnapshotEntry] = Field(description="Newest first.")
    total: int = Field(description="Snapshots in the time range.")


@router.get(
    "/system-health/history/",
    responses={403: {"description": "A key of an organization, or a viewer or service key."}},
)
async def system_health_history(
    session: SessionDep,
    principal: Annotated[Principal, OPERATORS],
    since: Annotated[AwareDatetime | None, Query(description="Snapshots at or after.")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Snapshots before.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> HealthHistoryPage:
    """The scheduled health checks' snapshots, newest first (system-wide: admins and operators
    of no organization only)."""
    if principal.organization_id is not None:
        raise Problem(
            403,
            "Forbidden",
            "the health history is system-wide; a key of an organization cannot read it",
        )
    if since is not None and until is not None and since >= until:
        raise Problem(422, "Invalid request", "since must be before until")
    conditions: list[Any] = []
    if since is not None:
        conditions.append(HealthSnapshot.at >= since)
    if until is not None:
        conditions.append(HealthSnapshot.at < until)
    total = await session.scalar(
        select(func.count()).select_from(HealthSnapshot).where(*conditions)
    )
    rows = (
        await session.execute(
            select(HealthSnapshot)
            .where(*conditions)
            .order_by(HealthSnapshot.at.desc(), HealthSnapshot.snapshot_id.desc())
            .limit(limit)
        )
    ).scalars()
    return HealthHistoryPage(
        items=[
            HealthSnapshotEntry(
                snapshot_id=r.snapshot_id,
                at=r.at,
                status=r.status,
                reasons=r.reasons,
                checks=r.checks,
                notified=r.notified,
            )
            for r in rows
        ],
        total=int(total or 0),
    )
