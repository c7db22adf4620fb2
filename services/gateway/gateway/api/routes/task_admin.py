"""Operators' view of tasks beyond the seed: list, cancel, retry, download a result file."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import FileResponse
from sqlalchemy import func, or_, select

from gateway.api.accept import status_url
from gateway.api.deps import (
    CurrentPrincipal,
    SessionDep,
    StateDep,
    effective_organization,
    require,
    visible,
)
from gateway.api.downloads import file_variants
from gateway.api.problems import Problem
from gateway.api.routes.tasks import to_response
from gateway.api.schemas import CancelResponse, QueuedResponse, TaskPage
from gateway.auth import Role
from gateway.models import DeadLetter, Task
from gateway.requeue import requeue
from prs_shared.messaging.envelope import Envelope, utcnow
from prs_shared.messaging.messages import CANCEL_TASK, CancelTask, TaskStatus
from prs_shared.messaging.outbox import add_to_outbox
from prs_shared.storage import InvalidKey, LocalFileStore

router = APIRouter(prefix="/api/background-tasks", tags=["task administration"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such task."}}
CANCELLABLE = frozenset({TaskStatus.QUEUED, TaskStatus.RETRYING})
"""States a task may be cancelled in: it has not started, or waits for its next attempt."""
RETRYABLE = frozenset({TaskStatus.FAILED, TaskStatus.DEAD_LETTERED, TaskStatus.CANCELLED})
"""States a task may be run again from."""


@router.get("/")
async def list_tasks(
    session: SessionDep,
    principal: CurrentPrincipal,
    state: StateDep,
    status_: Annotated[TaskStatus | None, Query(alias="status")] = None,
    task_type: Annotated[str | None, Query(max_length=200)] = None,
    queue: Annotated[str | None, Query(max_length=200)] = None,
    organization_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[datetime | None, Query(description="Queued at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Queued before (ISO 8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    stalled: Annotated[
        bool | None, Query(description="Only tasks flagged stalled (true) or not (false).")
    ] = None,
) -> TaskPage:
    """Tasks, newest first, filtered by status, type, queue, organization, time and the
    stalled flag."""
    conditions: list[Any] = []
    # A scoped key naming another organization is refused like one naming it in a body.
    org = effective_organization(principal, organization_id)
    if org is not None:
        conditions.append(Task.organization_id == org)
    if status_ is not None:
        conditions.extend(_reads_as(status_, state.settings.result_retention_seconds))
    if task_type:
        conditions.append(Task.task_type == task_type)
    if queue:
        conditions.append(Task.queue == queue)
    if stalled is not None:
        conditions.append(Task.stalled_at.is_not(None) if stalled else Task.stalled_at.is_(None))
    for bound, op in ((since, "ge"), (until, "lt")):
        if bound is not None:
            if bound.tzinfo is None:
                raise Problem(422, "Invalid request", "since/until need a timezone (e.g. Z)")
            column = func.coalesce(Task.queued_at, Task.updated_at)
            conditions.append(column >= bound if op == "ge" else column < bound)
    total = await session.scalar(select(func.count()).select_from(Task).where(*conditions))
    rows = (
        await session.execute(
            select(Task)
            .where(*conditions)
            .order_by(Task.updated_at.desc(), Task.task_id)
            .limit(limit)
            .offset(offset)
        )
    ).scalars()
    retention = state.settings.result_retention_seconds
    return TaskPage(
        items=[to_response(t, retention) for t in rows],
        total=int(total or 0),
        limit=limit,
        offset=offset,
    )


def _reads_as(status_: TaskStatus, retention_seconds: int) -> list[Any]:
    """Conditions for tasks whose status reads ``status_`` (as ``to_response`` shows it).

    EXPIRED is not stored: a finished task reads so once its result's retention is over, and
    then no longer reads as the status it ended with.
    """
    cutoff = utcnow() - timedelta(seconds=retention_seconds)
    if status_ == TaskStatus.EXPIRED:
        finished = [s.value for s in TaskStatus if s.terminal and s != TaskStatus.EXPIRED]
        return [Task.status.in_(finished), Task.finished_at <= cutoff]
    if status_.terminal:
        return [
            Task.status == status_.value,
            or_(Task.finished_at.is_(None), Task.finished_at > cutoff),
        ]
    return [Task.status == status_.value]


async def visible_task(session: SessionDep, principal: CurrentPrincipal, task_id: UUID) -> Task:
    """The task's row, or the 404 the API answers when it does not exist for this key."""
    task = await session.get(Task, str(task_id))
    if task is None or not visible(principal, task.organization_id):
        raise Problem(404, "Task not found", f"no task {task_id}")
    return task


@router.post(
    "/{task_id}/cancel/",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_NOT_FOUND, 409: {"description": "The task has finished or is running."}},
    dependencies=[require(Role.OPERATOR)],
)
async def cancel_task(
    task_id: UUID, session: SessionDep, principal: CurrentPrincipal, state: StateDep
) -> CancelResponse:
    """Cancel a task that has not started (or waits for a retry); persisted, not in memory."""
    async with session.begin():
        task = await visible_task(session, principal, task_id)
        current = TaskStatus(task.status)
        if current not in CANCELLABLE or task.message_id is None:
            raise Problem(409, "Task cannot be cancelled", f"task {task_id} is {current.value}")
        task.cancel_requested_at = utcnow()
        command = Envelope(
            type=CANCEL_TASK.type,
            payload=CancelTask(
                task_id=task_id, message_id=UUID(task.message_id), requested_by=principal.name
            ).model_dump(mode="json"),
            organization_id=task.organization_id,
            correlation_id=UUID(task.correlation_id) if task.correlation_id else uuid.uuid4(),
        )
        # On the task's own queue: the worker that would receive the task meets this first.
        await add_to_outbox(session, [(command, task.queue)], state.host.topology)
    state.host.relay.notify()
    return CancelResponse(task_id=task_id, status=current, cancel_requested=True)


@router.post(
    "/{task_id}/retry/",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_NOT_FOUND, 409: {"description": "Only failed, dead-lettered or cancelled."}},
    dependencies=[require(Role.OPERATOR)],
)
async def retry_task(
    task_id: UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    state: StateDep,
) -> QueuedResponse:
    """Run a failed, dead-lettered or cancelled task again: same task id, a new command."""
    async with session.begin():
        task = await visible_task(session, principal, task_id)
        current = TaskStatus(task.status)
        if current not in RETRYABLE or task.payload is None:
            raise Problem(409, "Task cannot be retried", f"task {task_id} is {current.value}")
        envelope = await requeue(session, task, how="retried", by=principal.name)
        await add_to_outbox(session, [(envelope, task.queue)], state.host.topology)
        await session.execute(
            DeadLetter.__table__.update()  # type: ignore[attr-defined]
            .where(DeadLetter.task_id == task.task_id, DeadLetter.replayed_at.is_(None))
            .values(replayed_at=utcnow())
        )
    state.host.relay.notify()
    return QueuedResponse(
        task_id=task_id,
        status=TaskStatus.QUEUED,
        queue=task.queue,
        status_url=status_url(request, task_id),
    )


@router.get(
    "/{task_id}/download/",
    response_class=FileResponse,
    responses={
        **_NOT_FOUND,
        200: {
            "description": "The file the task produced (an invoice PDF, a report), or one "
            "variant of a processed file (an image size, a stored attachment).",
            "content": {"application/pdf": {"example": "%PDF-1.7 ..."}},
        },
    },
)
async def download_result(
    task_id: UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    state: StateDep,
    format: Annotated[str | None, Query(pattern="^(json|csv|html|pdf)$")] = None,
    variant: Annotated[
        str | None,
        Query(
            pattern="^[a-z0-9_]{1,40}$",
            description="A processed file's variant: its name in the result's variants "
            "(large, medium, thumbnail, original, preview) or its side in pixels (256).",
        ),
    ] = None,
) -> FileResponse:
    """Download the file a finished task produced (``file_key``, ``files[format]`` or a
    processed file's ``variants[variant]``; the result's ``downloads`` lists them)."""
    task = await visible_task(session, principal, task_id)
    result = task.result or {}
    if TaskStatus(task.status) != TaskStatus.SUCCEEDED:
        raise Problem(404, "No file", f"task {task_id} has no file to download")
    key: Any = result.get("file_key")
    files = result.get("files")
    variants = file_variants(result)
    if isinstance(files, dict) and files:
        key = files.get(format or "html") or files.get(format or "") or next(iter(files.values()))
    elif variants:
        key = _variant_key(result, variants, variant)
    if variant is not None and not variants:
        raise Problem(404, "No such variant", f"task {task_id} has no variants")
    if not isinstance(key, str):
        raise Problem(404, "No file", f"task {task_id} has no file to download")
    return file_response(state.files, key)


def _variant_key(result: dict[str, Any], variants: dict[str, str], wanted: str | None) -> str:
    if wanted is None:
        # The stored file itself where there is one (an attachment), else the largest image.
        return variants.get("original") or next(iter(variants.values()))
    if wanted in variants:
        return variants[wanted]
    sizes = result.get("variant_sizes")
    if wanted.isdigit() and isinstance(sizes, dict):
        for name, side in sizes.items():
            if side == int(wanted) and name in variants:
                return variants[name]
    sides = sizes.values() if isinstance(sizes, dict) else ()
    known = sorted(variants) + sorted(str(v) for v in sides)
    raise Problem(
        404, "No such variant", f"no variant {wanted!r}; known: {', '.join(known)}", known=known
    )


def file_response(store: LocalFileStore, key: str) -> FileResponse:
    try:
        path = store.path(key)
    except InvalidKey:
        raise Problem(404, "No file", "the file is not in the store") from None
    if not path.is_file():
        raise Problem(404, "No file", "the file is not in the store")
    media = {
        ".pdf": "application/pdf",
        ".json": "application/json",
        ".csv": "text/csv",
        ".html": "text/html",
        ".txt": "text/plain",
        ".webp": "image/webp",
        ".jpg": "image/jpeg",
        ".png": "image/png",
        ".gif": "image/gif",
    }.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, filename=path.name)
