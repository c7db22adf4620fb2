"""``GET /api/automated-processes/process-status/``: every scheduled process, its schedule and
the outcome of its runs.

The schedule (cron, enabled, latest run) is the gateway's copy of the scheduler's; outcomes are
the task registry's, which folds every run's lifecycle. Housekeeping processes send events, not
tasks: their runs show in ``last_run`` and their counts stay at zero, each service keeping its
own outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.deps import CurrentPrincipal, SessionDep
from gateway.api.problems import Problem
from gateway.models import ScheduleReplica, Task
from gateway.schedules import PROCESSES, in_words, known_names, next_run, replicas
from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.messages import TaskStatus

router = APIRouter(prefix="/api/automated-processes", tags=["automated processes"])

_FAILED = (TaskStatus.FAILED.value, TaskStatus.DEAD_LETTERED.value)


class ProcessStatus(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "process_name": "commission_calculation",
                    "task_type": "process.commission_calculation.run",
                    "schedule": "every 6 hours",
                    "cron": "0 */6 * * *",
                    "enabled": True,
                    "next_run": "2026-11-28T18:00:00Z",
                    "status": "SUCCEEDED",
                    "last_run": "2026-11-28T12:00:00Z",
                    "last_finished": "2026-11-28T12:00:01Z",
                    "last_success": "2026-11-28T12:00:01Z",
                    "last_error": None,
                    "last_error_at": None,
                    "counts": {"SUCCEEDED": 28},
                    "success_count": 28,
                    "failure_count": 0,
                    "average_duration_ms": 412.5,
                    "last_duration_ms": 398.0,
                }
            ]
        }
    )

    process_name: str
    task_type: str = Field(description="What each run sends (a command's task type or an event).")
    schedule: str = Field(description="The schedule in words (UTC).")
    cron: str = Field(description="The cron expression the scheduler runs it by (UTC).")
    enabled: bool | None = Field(
        description="Whether the timer is on; null until the scheduler has announced it."
    )
    next_run: datetime | None = Field(description="Next scheduled time; null when disabled.")
    status: str = Field(description="Status of the latest run, or never_run.")
    last_run: datetime | None
    last_finished: datetime | None
    last_success: datetime | None = Field(description="When the latest successful run finished.")
    last_error: str | None = Field(description="The error of the latest failed run.")
    last_error_at: datetime | None
    counts: dict[str, int] = Field(description="Runs by status.")
    success_count: int
    failure_count: int = Field(description="Runs failed or dead-lettered.")
    average_duration_ms: float | None = Field(description="Mean duration of successful runs.")
    last_duration_ms: float | None = Field(description="Duration of the latest finished run.")


@router.get(
    "/process-status/",
    responses={
        200: {"description": "One object for a named process; the list of all without a name."},
        404: {"description": "Unknown process name; the problem lists the known ones."},
    },
)
async def process_status(
    session: SessionDep,
    principal: CurrentPrincipal,
    process_name: Annotated[str | None, Query(max_length=100)] = None,
) -> ProcessStatus | list[ProcessStatus]:
    """Schedule, next and last run, outcomes and timings of one automated process or of all."""
    copies = await replicas(session)
    names = known_names(copies)
    if process_name is None:
        return [await _status(session, principal.organization_id, n, copies) for n in names]
    if process_name not in names:
        raise Problem(
            404, "Unknown process", f"no process {process_name!r}; known: {', '.join(names)}"
        )
    return await _status(session, principal.organization_id, process_name, copies)


async def process_statuses(
    session: AsyncSession, organization_id: str | None
) -> list[ProcessStatus]:
    """Every process, as the list endpoint shows it to a caller of ``organization_id``."""
    copies = await replicas(session)
    return [await _status(session, organization_id, n, copies) for n in known_names(copies)]


async def _status(
    session: AsyncSession, org: str | None, name: str, copies: dict[str, ScheduleReplica]
) -> ProcessStatus:
    copy = copies.get(name)
    seed = PROCESSES.get(name)
    task_type = copy.message_type if copy else seed.message.type if seed else ""
    cron = copy.cron if copy else seed.cron if seed else ""
    enabled = copy.enabled if copy else None
    conditions: list[Any] = [Task.task_type == task_type]
    if org is not None:
        conditions.append(Task.organization_id == org)

    async def latest(*where: Any) -> Task | None:
        stmt = select(Task).where(*conditions, *where).order_by(Task.updated_at.desc()).limit(1)
        found: Task | None = (await session.execute(stmt)).scalar_one_or_none()
        return found

    counts = {
        row.status: int(row.n)
        for row in await session.execute(
            select(Task.status, func.count().label("n")).where(*conditions).group_by(Task.status)
        )
    }
    last = await latest()
    succeeded = await latest(Task.status == TaskStatus.SUCCEEDED.value)
    failed = await latest(Task.status.in_(_FAILED))
    finished = await latest(Task.finished_at.is_not(None))
    average = await session.scalar(
        select(func.avg(Task.duration_ms)).where(
            *conditions, Task.status == TaskStatus.SUCCEEDED.value
        )
    )
    last_run = max(
        (t for t in ((last.queued_at or last.started_at) if last else None, _run_of(copy)) if t),
        default=None,
    )
    return ProcessStatus(
        process_name=name,
        task_type=task_type,
        schedule=in_words(cron),
        cron=cron,
        enabled=enabled,
        next_run=None if enabled is False else next_run(cron, utcnow()),
        status=last.status if last else _unseen_status(copy),
        last_run=last_run,
        last_finished=last.finished_at if last else None,
        last_success=succeeded.finished_at if succeeded else None,
        last_error=failed.error if failed else None,
        last_error_at=(failed.finished_at or failed.updated_at) if failed else None,
        counts=counts,
        success_count=counts.get(TaskStatus.SUCCEEDED.value, 0),
        failure_count=sum(counts.get(s, 0) for s in _FAILED),
        average_duration_ms=float(average) if average is not None else None,
        last_duration_ms=finished.duration_ms if finished else None,
    )


def _run_of(copy: ScheduleReplica | None) -> datetime | None:
    """The scheduler's latest run (scheduled time), the only record of an event process's."""
    return copy.last_run_at if copy else None


def _unseen_status(copy: ScheduleReplica | None) -> str:
    """Status of a process with no task in the registry: a run of an event process is an event
    sent; a command the scheduler staged is queued until its service reports on it."""
    if copy is None or copy.last_run_at is None:
        return "never_run"
    return "event_sent" if copy.message_kind == "event" else TaskStatus.QUEUED.value
