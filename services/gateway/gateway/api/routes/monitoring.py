"""Queues and workers: what Celery's ``inspect active / reserved / stats`` answer."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from gateway.api.deps import CurrentPrincipal, SessionDep, StateDep
from gateway.broker_view import queue_stats
from gateway.dead_letter_counts import waiting_by_queue
from gateway.models import ServiceHeartbeat, Task
from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.messages import TaskStatus

router = APIRouter(prefix="/api/background-tasks", tags=["monitoring"])

RATE_WINDOW = timedelta(minutes=5)


class QueueView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "workflow",
                    "ready": 12,
                    "consumers": 2,
                    "dead_letters_waiting": 0,
                    "in_flight": 3,
                    "completed_per_minute": 240.0,
                }
            ]
        }
    )

    name: str
    ready: int | None = Field(description="Messages waiting (Celery's reserved, broker side).")
    consumers: int | None
    dead_letters_waiting: int | None = Field(
        description="Dead letters of this queue archived and not replayed (the caller's "
        "organization's only, for a scoped key): what /api/dead-letters/ lists."
    )
    in_flight: int = Field(description="Tasks STARTED or RETRYING on this queue.")
    completed_per_minute: float = Field(description="Finished tasks per minute, last 5 minutes.")


class WorkerView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service": "deal-workflow",
                    "worker": "host-1:4242",
                    "alive": True,
                    "started_at": "2026-11-28T12:00:00Z",
                    "last_seen": "2026-11-28T12:00:00Z",
                    "in_flight": 3,
                    "processed": 1200,
                    "queues": ["workflow", "business_processes", "reports", "deal-workflow.events"],
                }
            ]
        }
    )

    service: str
    worker: str
    alive: bool
    started_at: datetime
    last_seen: datetime
    in_flight: int = Field(description="Messages being handled now (Celery's active).")
    processed: int = Field(description="Messages handled since start (Celery's stats).")
    queues: list[str]


@router.get("/queues/")
async def queues(
    state: StateDep, session: SessionDep, principal: CurrentPrincipal
) -> list[QueueView]:
    """Depth, consumers, dead letters, in-flight and completion rate of every queue."""
    stats = await queue_stats(state.host.connection, state.host.topology)
    since = utcnow() - RATE_WINDOW
    in_flight = _by_queue(
        await session.execute(
            select(Task.queue, func.count())
            .where(Task.status.in_([TaskStatus.STARTED.value, TaskStatus.RETRYING.value]))
            .group_by(Task.queue)
        )
    )
    done = _by_queue(
        await session.execute(
            select(Task.queue, func.count()).where(Task.finished_at >= since).group_by(Task.queue)
        )
    )
    waiting = await waiting_by_queue(session, principal.organization_id)
    prefix = state.host.topology.namespace
    views = []
    for s in stats:
        base = s.name.removeprefix(prefix)
        views.append(
            QueueView(
                name=base,
                ready=s.messages,
                consumers=s.consumers,
                dead_letters_waiting=waiting.get(s.name, 0),
                in_flight=in_flight.get(base, 0),
                completed_per_minute=round(done.get(base, 0) / (RATE_WINDOW.seconds / 60), 2),
            )
        )
    return views


def _by_queue(rows: Any) -> dict[str, int]:
    return {str(queue): int(n) for queue, n in rows}


@router.get("/workers/")
async def workers(
    state: StateDep, session: SessionDep, principal: CurrentPrincipal
) -> list[WorkerView]:
    """Every service instance that sent a heartbeat, whether it is alive, and its counters."""
    beats = (
        await session.execute(select(ServiceHeartbeat).order_by(ServiceHeartbeat.service))
    ).scalars()
    stale = timedelta(seconds=state.settings.heartbeat_stale_seconds)
    now = utcnow()
    return [
        WorkerView(
            service=b.service,
            worker=b.worker,
            alive=now - b.last_seen <= stale,
            started_at=b.started_at,
            last_seen=b.last_seen,
            in_flight=b.in_flight,
            processed=b.processed,
            queues=b.queues,
        )
        for b in beats
    ]
