"""Task status and the diagnostic task."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, status

from gateway.api.accept import queued_response
from gateway.api.deps import CurrentPrincipal, SessionDep, StateDep, require, visible
from gateway.api.downloads import with_downloads
from gateway.api.problems import Problem, invalid
from gateway.api.schemas import (
    DIAGNOSTIC_QUEUES,
    DiagnosticRequest,
    DiagnosticResponse,
    QueuedResponse,
    TaskEventResponse,
    TaskEventsResponse,
    TaskStatusResponse,
)
from gateway.auth import Role
from gateway.models import Task
from gateway.queueing import queue_task
from gateway.state import GatewayState
from gateway.task_events import events_of
from prs_shared.messaging.envelope import Priority, utcnow
from prs_shared.messaging.messages import PING, Ping, TaskStatus

router = APIRouter(prefix="/api/background-tasks", tags=["background tasks"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No task with that id (or not visible to this key)."}
}


MAX_WAIT_SECONDS = 30.0
RECHECK_SECONDS = 0.25
"""A waiting status request re-reads its task after this long without a wake-up (another
gateway replica's registry may fold the outcome, and only this process's folds wake it), then
less and less often, up to ``MAX_RECHECK_SECONDS``: many holds must not load the database."""
MAX_RECHECK_SECONDS = 2.0


@router.get("/{task_id}/status/", responses=_NOT_FOUND)
async def get_task_status(
    task_id: UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    state: StateDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Seconds to hold the answer until the task has finished (any final "
            "status); it comes as soon as it has, or with the status at the end of the wait. "
            "0: at once.",
        ),
    ] = 0,
) -> TaskStatusResponse:
    """Status, result or error, attempts and timings of one task."""
    task = await session.get(Task, str(task_id))
    if task is None or not visible(principal, task.organization_id):
        raise Problem(404, "Task not found", f"no task {task_id}")
    if wait > 0 and not TaskStatus(task.status).terminal:
        # Not on the request's session: that would hold a pooled connection for the wait.
        await session.close()
        task = await _until_finished(state, str(task_id), wait)
        if task is None:
            raise Problem(404, "Task not found", f"no task {task_id}")
    return to_response(task, state.settings.result_retention_seconds)


async def _until_finished(state: GatewayState, task_id: str, wait: float) -> Task | None:
    """The task once it has finished, or as it is when ``wait`` seconds have passed; None if
    it was deleted meanwhile."""
    deadline = asyncio.get_running_loop().time() + wait
    recheck = RECHECK_SECONDS
    with state.feed.watch(task_id) as changed:
        while True:
            # Read after watching: a change committed in between still wakes the wait below.
            changed.clear()
            async with state.host.sessions() as session:
                task = await session.get(Task, task_id)
            left = deadline - asyncio.get_running_loop().time()
            if task is None or TaskStatus(task.status).terminal or left <= 0:
                return task
            try:
                await asyncio.wait_for(changed.wait(), min(left, recheck))
            except TimeoutError:
                recheck = min(recheck * 1.5, MAX_RECHECK_SECONDS)


@router.get("/{task_id}/events/", responses=_NOT_FOUND)
async def get_task_events(
    task_id: UUID, session: SessionDep, principal: CurrentPrincipal
) -> TaskEventsResponse:
    """The task's history, oldest first: queued, started, each retry with its error, outcome."""
    task = await session.get(Task, str(task_id))
    if task is None or not visible(principal, task.organization_id):
        raise Problem(404, "Task not found", f"no task {task_id}")
    return TaskEventsResponse(
        task_id=task_id,
        events=[
            TaskEventResponse(
                status=TaskStatus(e.status),
                at=e.at,
                attempt=e.attempt,
                error=e.error,
                worker=e.worker,
                retry_at=e.retry_at,
                detail=e.detail or {},
            )
            for e in await events_of(session, task.task_id)
        ],
    )


def to_response(task: Task, retention_seconds: int) -> TaskStatusResponse:
    current = TaskStatus(task.status)
    expires_at = (
        task.finished_at + timedelta(seconds=retention_seconds) if task.finished_at else None
    )
    result = task.result
    # The outcome is decided by the stored status; expiry only drops the result. A task that
    # succeeded still reads successful=true once EXPIRED, and its error (if any) is kept.
    successful = (current == TaskStatus.SUCCEEDED) if current.terminal else None
    if expires_at is not None and expires_at <= utcnow() and current.terminal:
        current, result = TaskStatus.EXPIRED, None
    if current == TaskStatus.SUCCEEDED:
        result = with_downloads(task.task_id, result)
    return TaskStatusResponse(
        task_id=UUID(task.task_id),
        task_type=task.task_type,
        status=current,
        successful=successful,
        result=result,
        error=task.error,
        attempts=task.attempts,
        queue=task.queue,
        priority=task.priority,
        organization_id=task.organization_id,
        queued_by=task.queued_by,
        correlation_id=task.correlation_id,
        service=task.service,
        worker=task.worker,
        queued_at=task.queued_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
        updated_at=task.updated_at,
        retry_at=task.retry_at,
        duration_ms=task.duration_ms,
        expires_at=expires_at,
        stalled_at=task.stalled_at,
        stalled_reason=task.stalled_reason,
        stalled_requeues=task.stalled_requeues or 0,
    )


@router.post(
    "/queue-diagnostic/",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[require(Role.OPERATOR)],
)
async def queue_diagnostic(
    body: DiagnosticRequest,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    state: StateDep,
) -> DiagnosticResponse:
    """Send the diagnostic task to each named service; each answers with its name and worker."""
    unknown = [s for s in body.services if s not in DIAGNOSTIC_QUEUES]
    if unknown:
        raise invalid([{"field": "services", "message": f"unknown: {', '.join(unknown)}"}])
    queued: dict[str, QueuedResponse] = {}
    async with session.begin():
        for service in body.services:
            task = await queue_task(
                session,
                state.host.topology,
                type_=PING.type,
                payload=Ping(note=body.note),
                priority=Priority.HIGH,
                organization_id=principal.organization_id,
                queued_by=principal.name,
                queue=DIAGNOSTIC_QUEUES[service],
            )
            queued[service] = queued_response(request, task)
    state.host.relay.notify()
    return DiagnosticResponse(tasks=queued)
