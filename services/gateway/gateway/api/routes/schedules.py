"""Admin endpoints of the scheduler's schedules: list, enable, disable, re-time, run now.

Lists are answered from the gateway's copy of the schedules (``scheduler.schedule_changed``);
changes are commands to the scheduler (``schedule.update``, ``schedule.run_now``), queued through
the outbox like any task and audited by the scheduler under the API key's name. A change shows in
the list once the scheduler has applied and announced it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.accept import ACCEPTED, accept
from gateway.api.deps import QueuingPrincipal, SessionDep, StateDep, require
from gateway.api.problems import Problem
from gateway.api.schemas import QueuedResponse
from gateway.auth import Principal, Role
from gateway.models import ScheduleReplica
from gateway.schedules import PROCESSES, in_words, is_valid_cron, known_names, next_run, replicas
from gateway.state import GatewayState
from prs_shared.messaging.envelope import Priority, utcnow
from prs_shared.messaging.schedule import RUN_JOB_NOW, UPDATE_SCHEDULE, RunJobNow, UpdateSchedule

router = APIRouter(
    prefix="/api/automated-processes/schedules",
    tags=["schedules"],
    dependencies=[require(Role.ADMIN)],
    responses={403: {"description": "Not an admin key, or an admin key of one organization."}},
)

JobPath = Annotated[str, Path(max_length=100, description="A process name, e.g. system_cleanup.")]


class ScheduleView(BaseModel):
    """One schedule as the scheduler last announced it (or the seed's, if it has not yet)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "overdue_detection",
                    "cron": "0 1 * * *",
                    "schedule": "daily at 01:00 UTC",
                    "enabled": True,
                    "next_run": "2026-11-29T01:00:00Z",
                    "description": "Daily at 01:00: find deals past due and unpaid.",
                    "message_type": "process.overdue_detection.run",
                    "message_kind": "command",
                    "announced": True,
                    "revision": 3,
                    "changed_at": "2026-11-28T09:00:00Z",
                    "changed_by": "ops admin",
                    "last_run_at": "2026-11-28T01:00:00Z",
                    "last_run_source": "schedule",
                    "last_run_task_id": "9d1b8c2e-5a43-4a43-9f0e-4c7a1f6f1b11",
                }
            ]
        }
    )

    name: str
    cron: str = Field(description="Cron expression, UTC.")
    schedule: str = Field(description="The cron expression in words.")
    enabled: bool | None = Field(description="Null until the scheduler has announced it.")
    next_run: datetime | None
    description: str
    message_type: str
    message_kind: str
    announced: bool = Field(description="Whether this is the scheduler's word or the seed's.")
    revision: int | None
    changed_at: datetime | None
    changed_by: str | None
    last_run_at: datetime | None
    last_run_source: str | None
    last_run_task_id: str | None


class ScheduleChangeRequest(BaseModel):
    """A change to one schedule: switch it on or off, give it a new cron expression, or both."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"cron": "0 2 * * *"}, {"enabled": False}]},
    )

    enabled: bool | None = None
    cron: str | None = Field(
        default=None, min_length=1, max_length=100, description="Five fields, UTC."
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_cron(value):
            raise ValueError(f"{value!r} is not a valid cron expression")
        return value

    @model_validator(mode="after")
    def _something(self) -> ScheduleChangeRequest:
        if self.enabled is None and self.cron is None:
            raise ValueError("give enabled, cron or both")
        return self


def _view(name: str, copy: ScheduleReplica | None) -> ScheduleView:
    seed = PROCESSES.get(name)
    cron = copy.cron if copy else seed.cron if seed else ""
    enabled = copy.enabled if copy else None
    return ScheduleView(
        name=name,
        cron=cron,
        schedule=in_words(cron),
        enabled=enabled,
        next_run=None if enabled is False else next_run(cron, utcnow()),
        description=copy.description if copy else seed.message.description if seed else "",
        message_type=copy.message_type if copy else seed.message.type if seed else "",
        message_kind=copy.message_kind if copy else seed.message.kind if seed else "",
        announced=copy is not None,
        revision=copy.revision if copy else None,
        changed_at=copy.changed_at if copy else None,
        changed_by=copy.changed_by if copy else None,
        last_run_at=copy.last_run_at if copy else None,
        last_run_source=copy.last_run_source if copy else None,
        last_run_task_id=copy.last_run_task_id if copy else None,
    )


async def _known(session: AsyncSession, name: str) -> tuple[str, ScheduleReplica | None]:
    copies = await replicas(session)
    names = known_names(copies)
    if name not in names:
        raise Problem(404, "Unknown schedule", f"no schedule {name!r}; known: {', '.join(names)}")
    return name, copies.get(name)


async def _lookup(state: GatewayState, name: str) -> tuple[str, ScheduleReplica | None]:
    # A session of its own, closed before the task is committed: an embedded SQLite database
    # would otherwise see the acceptor's write wait behind this request's read.
    async with state.host.sessions() as session:
        return await _known(session, name)


def _unscoped(principal: Principal) -> None:
    # Every job runs for all organizations; the scheduler refuses a scoped caller's change.
    if principal.organization_id is not None:
        raise Problem(403, "Forbidden", "schedules need an admin key without organization")


@router.get("/")
async def list_schedules(session: SessionDep) -> list[ScheduleView]:
    """Every scheduled process with its cron expression, enabled flag and latest run."""
    copies = await replicas(session)
    return [_view(name, copies.get(name)) for name in known_names(copies)]


@router.get("/{name}/", responses={404: {"description": "Unknown schedule."}})
async def get_schedule(name: JobPath, session: SessionDep) -> ScheduleView:
    """One schedule."""
    return _view(*await _known(session, name))


async def change_schedule(
    name: str,
    change: ScheduleChangeRequest,
    request: Request,
    principal: Principal,
    state: GatewayState,
) -> QueuedResponse:
    """Queue ``schedule.update`` for a known schedule; the scheduler applies and audits it."""
    _unscoped(principal)
    await _lookup(state, name)
    return await accept(
        state=state,
        request=request,
        principal=principal,
        type_=UPDATE_SCHEDULE.type,
        payload=UpdateSchedule(
            job=name, enabled=change.enabled, cron=change.cron, requested_by=principal.name
        ),
        priority=Priority.HIGH,
        organization_id=None,
    )


_CHANGED: dict[int | str, dict[str, object]] = {
    **ACCEPTED,
    404: {"description": "Unknown schedule."},
}


@router.patch(
    "/{name}/", status_code=status.HTTP_202_ACCEPTED, responses=_CHANGED, name="change_schedule"
)
async def patch_schedule(
    name: JobPath,
    body: ScheduleChangeRequest,
    request: Request,
    principal: QueuingPrincipal,
    state: StateDep,
) -> QueuedResponse:
    """Enable or disable a schedule or give it a new cron expression (applied at the next tick)."""
    return await change_schedule(name, body, request, principal, state)


@router.post("/{name}/enable/", status_code=status.HTTP_202_ACCEPTED, responses=_CHANGED)
async def enable_schedule(
    name: JobPath,
    request: Request,
    principal: QueuingPrincipal,
    state: StateDep,
) -> QueuedResponse:
    """Switch a schedule's timer on; it runs from its next time on."""
    change = ScheduleChangeRequest(enabled=True)
    return await change_schedule(name, change, request, principal, state)


@router.post("/{name}/disable/", status_code=status.HTTP_202_ACCEPTED, responses=_CHANGED)
async def disable_schedule(
    name: JobPath,
    request: Request,
    principal: QueuingPrincipal,
    state: StateDep,
) -> QueuedResponse:
    """Switch a schedule's timer off; run-now is refused too until it is enabled again."""
    change = ScheduleChangeRequest(enabled=False)
    return await change_schedule(name, change, request, principal, state)


@router.post(
    "/{name}/run/",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_CHANGED, 409: {"description": "The schedule is disabled."}},
)
async def run_schedule_now(
    name: JobPath,
    request: Request,
    principal: QueuingPrincipal,
    state: StateDep,
) -> QueuedResponse:
    """Run a scheduled process now, through the scheduler (recorded as a manual run)."""
    _unscoped(principal)
    _, copy = await _lookup(state, name)
    if copy is not None and not copy.enabled:
        raise Problem(409, "Schedule disabled", f"schedule {name!r} is disabled; enable it first")
    return await accept(
        state=state,
        request=request,
        principal=principal,
        type_=RUN_JOB_NOW.type,
        payload=RunJobNow(job=name, requested_by=principal.name),
        priority=Priority.HIGH,
        organization_id=None,
    )
