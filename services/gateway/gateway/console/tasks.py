"""The console's tasks: a live list over server-sent events, one task's page, its actions.

Every read and action goes through the API's own route functions, called with the session's
principal, so the console shows and does exactly what the API would for that key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    Response,
    StreamingResponse,
)

from gateway.api.deps import SessionDep, StateDep
from gateway.api.problems import Problem
from gateway.api.routes.task_admin import (
    CANCELLABLE,
    RETRYABLE,
    cancel_task,
    download_result,
    list_tasks,
    retry_task,
    visible_task,
)
from gateway.api.routes.tasks import get_task_events, get_task_status
from gateway.api.schemas import TaskPage, TaskStatusResponse
from gateway.console.session import ConsoleSession
from gateway.console.timeline import timeline
from gateway.console.web import Console, Operating, act, page, problem_page, templates
from gateway.state import GatewayState
from gateway.task_feed import TaskFeed
from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.messages import TaskStatus

router = APIRouter()

PAGE_SIZE = 50
RECHECK_SECONDS = 1.0
"""A stream re-reads its page at least this often, announced or not."""
MIN_REREAD_SECONDS = 0.25
"""And at most this often: under load the registry commits many times a second."""
KEEPALIVE_SECONDS = 15.0
STREAM_SECONDS = 300.0
"""A stream ends after this long; the browser's EventSource reconnects by itself."""
WINDOWS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "1d": timedelta(days=1)}


@dataclass(frozen=True)
class TaskFilter:
    """The list's filters, as the query string carries them."""

    status: str = ""
    task_type: str = ""
    queue: str = ""
    organization_id: str = ""
    window: str = ""
    task_id: str = ""
    since: str = ""
    until: str = ""

    def errors(self, console: ConsoleSession) -> list[str]:
        found = []
        if self.status and self.status not in TaskStatus.__members__.values():
            found.append(f"status: unknown state {self.status!r}")
        if self.organization_id and not console.principal.is_admin:
            found.append("organization_id: only an admin filters by organization")
        if self.window and self.window not in WINDOWS:
            found.append(f"window: one of {', '.join(WINDOWS)}")
        for name in ("since", "until"):
            try:
                self.moment(name)
            except ValueError:
                found.append(f"{name}: not a date and time (YYYY-MM-DDTHH:MM, UTC)")
        if self.task_id:
            try:
                UUID(self.task_id)
            except ValueError:
                found.append("task_id: not a task id")
        return found

    def moment(self, name: str) -> datetime | None:
        """``since`` or ``until`` as UTC; the browser's datetime-local field sends no zone."""
        value: str = getattr(self, name)
        if not value:
            return None
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment

    def queued_after(self) -> datetime | None:
        """The later of the window's start and ``since``."""
        window = WINDOWS.get(self.window)
        starts = [m for m in (utcnow() - window if window else None, self.moment("since")) if m]
        return max(starts) if starts else None


def task_filter(
    status: Annotated[str, Query(max_length=20)] = "",
    task_type: Annotated[str, Query(max_length=200)] = "",
    queue: Annotated[str, Query(max_length=200)] = "",
    organization_id: Annotated[str, Query(max_length=200)] = "",
    window: Annotated[str, Query(max_length=5)] = "",
    task_id: Annotated[str, Query(max_length=36)] = "",
    since: Annotated[str, Query(max_length=32)] = "",
    until: Annotated[str, Query(max_length=32)] = "",
) -> TaskFilter:
    return TaskFilter(
        status, task_type, queue, organization_id, window, task_id.strip(), since, until
    )


Filters = Annotated[TaskFilter, Depends(task_filter)]


async def read_page(state: GatewayState, console: Console, filters: TaskFilter) -> TaskPage:
    """The list's tasks for this session and these filters (already validated)."""
    async with state.host.sessions() as session:
        if filters.task_id:
            try:
                task_id = UUID(filters.task_id)
                one = await get_task_status(task_id, session, console.principal, state)
            except Problem:
                return TaskPage(items=[], total=0, limit=PAGE_SIZE, offset=0)
            return TaskPage(items=[one], total=1, limit=PAGE_SIZE, offset=0)
        return await list_tasks(
            session,
            console.principal,
            state,
            TaskStatus(filters.status) if filters.status else None,
            filters.task_type or None,
            filters.queue or None,
            filters.organization_id or None,
            filters.queued_after(),
            filters.moment("until"),
            PAGE_SIZE,
            0,
        )


def _rows(request: Request, console: Console, tasks: TaskPage) -> str:
    return templates.get_template("_task_rows.html").render(
        request=request, console=console, tasks=tasks
    )


@router.get("/tasks")
async def tasks_page(
    request: Request, state: StateDep, console: Console, filters: Filters
) -> HTMLResponse:
    errors = filters.errors(console)
    try:
        tasks = None if errors else await read_page(state, console, filters)
    except Problem as refused:
        errors, tasks = [refused.detail or refused.title], None
    return page(
        request,
        "tasks.html",
        console,
        400 if errors else 200,
        filters=filters,
        errors=errors,
        tasks=tasks,
        statuses=list(TaskStatus),
        windows=list(WINDOWS),
        query=request.url.query,
    )


@router.get("/tasks/feed")
async def tasks_feed(
    request: Request, state: StateDep, console: Console, filters: Filters
) -> StreamingResponse:
    """Server-sent events: a ``rows`` event with the list's new rows whenever they change."""
    if filters.errors(console):
        raise Problem(400, "Invalid filter", "; ".join(filters.errors(console)))
    feed: TaskFeed = request.app.state.console_feed

    async def events() -> AsyncIterator[str]:
        shown = None
        quiet = 0.0
        started = asyncio.get_running_loop().time()
        with feed.listen(console.principal.organization_id) as woken:
            yield "retry: 1000\n\n"
            while asyncio.get_running_loop().time() - started < STREAM_SECONDS:
                if await request.is_disconnected():
                    return
                rows = _rows(request, console, await read_page(state, console, filters))
                if rows != shown:
                    shown, quiet = rows, 0.0
                    yield sse("rows", rows)
                elif quiet >= KEEPALIVE_SECONDS:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                try:
                    await asyncio.wait_for(woken.get(), RECHECK_SECONDS)
                except TimeoutError:
                    quiet += RECHECK_SECONDS
                else:
                    await asyncio.sleep(MIN_REREAD_SECONDS)
                    quiet += MIN_REREAD_SECONDS

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def sse(event: str, data: str) -> str:
    """One server-sent event; every line of ``data`` gets its own ``data:`` field."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


@router.get("/tasks/{task_id}")
async def task_page(
    task_id: UUID, request: Request, session: SessionDep, state: StateDep, console: Console
) -> HTMLResponse:
    principal = console.principal
    try:
        task = await get_task_status(task_id, session, principal, state)
        history = await get_task_events(task_id, session, principal)
        row = await visible_task(session, principal, task_id)
    except Problem as missing:
        return problem_page(request, console, missing)
    return page(
        request,
        "task.html",
        console,
        task=task,
        payload=row.payload,
        timeline=timeline(task, history.events),
        downloads=downloads(task),
        may_retry=console.may_change and task.status in RETRYABLE and row.payload is not None,
        may_cancel=console.may_change and task.status in CANCELLABLE,
    )


def downloads(task: TaskStatusResponse) -> list[str]:
    """Formats offered for download: those of a result with files, or its one file."""
    result = task.result or {}
    if task.status != TaskStatus.SUCCEEDED:
        return []
    files = result.get("files")
    if isinstance(files, dict) and files:
        return [str(f) for f in files]
    return ["file"] if isinstance(result.get("file_key"), str) else []


@router.get("/tasks/{task_id}/download", response_model=None)
async def download(
    task_id: UUID,
    session: SessionDep,
    state: StateDep,
    console: Console,
    format: Annotated[str | None, Query(pattern="^(json|csv|html|pdf)$")] = None,
) -> FileResponse:
    return await download_result(task_id, session, console.principal, state, format)


@router.post("/tasks/{task_id}/retry", response_model=None)
async def retry(
    task_id: UUID, request: Request, session: SessionDep, state: StateDep, console: Operating
) -> Response:
    retried = retry_task(task_id, request, session, console.principal, state)
    return await act(request, console, retried, f"/console/tasks/{task_id}")


@router.post("/tasks/{task_id}/cancel", response_model=None)
async def cancel(
    task_id: UUID, request: Request, session: SessionDep, state: StateDep, console: Operating
) -> Response:
    cancelled = cancel_task(task_id, session, console.principal, state)
    return await act(request, console, cancelled, f"/console/tasks/{task_id}")
