"""Scheduled processes with their schedule, last run and outcome, run now, enable and disable;
the notification log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.api.deps import SessionDep, StateDep, rate_limited
from gateway.api.problems import Problem
from gateway.api.routes.notifications import notification_log
from gateway.api.routes.process_status import process_statuses
from gateway.api.routes.processes import TRIGGERS, run_process
from gateway.api.routes.schedules import ScheduleChangeRequest, change_schedule
from gateway.console.web import Console, Operating, page, problem_page

router = APIRouter()


@router.get("/processes")
async def processes(request: Request, session: SessionDep, console: Console) -> HTMLResponse:
    return page(
        request,
        "processes.html",
        console,
        processes=await process_statuses(session, console.principal.organization_id),
        runnable=set(TRIGGERS),
        may_schedule=console.principal.is_admin and console.principal.organization_id is None,
        queued=request.query_params.get("queued"),
    )


@router.post("/processes/{name}/run", response_model=None)
async def run_now(name: str, request: Request, state: StateDep, console: Operating) -> Response:
    """Queue the process now, for the session's organization (all of them for an admin key)."""
    spec = TRIGGERS.get(name)
    try:
        if spec is None:
            raise Problem(404, "Unknown process", f"no process {name!r} runs on demand")
        principal = await rate_limited(console.principal, state)
        queued = await run_process(spec, request, principal, state, None)
    except Problem as refused:
        return problem_page(request, console, refused)
    return RedirectResponse(f"/console/processes?queued={queued.task_id}", 303)


@router.post("/processes/{name}/{switch}", response_model=None)
async def switch_schedule(
    name: str, switch: str, request: Request, state: StateDep, console: Operating
) -> Response:
    """Enable or disable a process's schedule (admin keys only, as in the API)."""
    try:
        if switch not in ("enable", "disable"):
            raise Problem(404, "Not found", f"no action {switch!r}; enable or disable")
        if not console.principal.is_admin:
            raise Problem(403, "Forbidden", "switching schedules needs an admin key")
        principal = await rate_limited(console.principal, state)
        change = ScheduleChangeRequest(enabled=switch == "enable")
        queued = await change_schedule(name, change, request, principal, state)
    except Problem as refused:
        return problem_page(request, console, refused)
    return RedirectResponse(f"/console/processes?queued={queued.task_id}", 303)


@router.get("/notifications")
async def notifications(request: Request, session: SessionDep, console: Console) -> HTMLResponse:
    log = await notification_log(session, console.principal, None, None, 100, 0)
    return page(request, "notifications.html", console, log=log)
