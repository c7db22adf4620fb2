"""``--action=status``: one task's status, result and timings, or (without ``--task-id``) a list of
recent tasks, filtered by ``--status``, ``--task-type`` and ``--organization``."""

from __future__ import annotations

import json
import uuid
from typing import Any

from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from prs_cli.actions.context import ActionContext
from prs_cli.actions.queue import TASK_TYPES, organization_id
from prs_cli.client import API_PREFIX, TERMINAL_STATUSES, TaskState, status_path
from prs_cli.errors import CliError, GatewayError, ProblemError, UsageError
from prs_cli.output import styled_status
from prs_cli.records import Cell, render_records

# Fields in the order a person reads them; anything else the gateway adds follows.
FIELD_ORDER = (
    "task_id",
    "task_type",
    "status",
    "successful",
    "service",
    "worker",
    "queue",
    "priority",
    "attempts",
    "organization_id",
    "queued_by",
    "correlation_id",
    "queued_at",
    "started_at",
    "finished_at",
    "duration_ms",
    "retry_at",
    "expires_at",
    "updated_at",
    "error",
    "result",
)


STATUSES = ("QUEUED", "STARTED", "RETRYING", *sorted(TERMINAL_STATUSES))
LIST_PATH = f"{API_PREFIX}/"


def run(ctx: ActionContext) -> int:
    """Fetch and show the task's status; exit 1 when the gateway knows no such task."""
    if ctx.options.task_id is None:
        return list_tasks(ctx)
    task_id = validated_task_id(ctx.options.task_id)
    if ctx.options.dry_run:
        url = ctx.config.gateway_url + status_path(task_id)
        if ctx.output.json_mode:
            ctx.output.json({"dry_run": True, "requests": [{"method": "GET", "url": url}]})
        else:
            ctx.output.line(f"dry run: would GET {url}")
        return 0
    try:
        state = ctx.client().task_status(task_id)
    except ProblemError as exc:
        if exc.status == 404:
            raise CliError(f"no task {task_id}") from exc
        raise
    if ctx.output.json_mode:
        ctx.output.json(state.raw)
    else:
        ctx.output.render(render_state(state))
    return 0


def list_tasks(ctx: ActionContext) -> int:
    """The most recent tasks, newest first (``--limit``, 20 by default)."""
    params = list_params(ctx)
    if ctx.options.dry_run:
        url = ctx.config.gateway_url + LIST_PATH
        if ctx.output.json_mode:
            ctx.output.json(
                {"dry_run": True, "requests": [{"method": "GET", "url": url, "params": params}]}
            )
        else:
            ctx.output.line(f"dry run: would GET {url} with {json.dumps(params)}")
        return 0
    page = ctx.client().get_json(LIST_PATH, params=params)
    if not isinstance(page, dict) or not isinstance(page.get("items"), list):
        raise GatewayError("unexpected answer from the task list")
    if ctx.output.json_mode:
        ctx.output.json(page)
        return 0
    items = [TaskState(str(t.get("task_id")), str(t.get("status")), t) for t in page["items"]]
    ctx.output.render(render_list(ctx.output.out, items))
    ctx.output.line(f"{len(items)} of {page.get('total', len(items))} task(s)")
    return 0


def list_params(ctx: ActionContext) -> dict[str, str | int]:
    """The list's query; ``--task-type`` may be a queue action's name or the gateway's type."""
    o = ctx.options
    params: dict[str, str | int] = {"limit": o.limit}
    if o.status:
        status = o.status.strip().upper()
        if status not in STATUSES:
            raise UsageError(f"{o.status!r} is not one of: {', '.join(STATUSES)}", param="--status")
        params["status"] = status
    if o.task_type:
        known = TASK_TYPES.get(o.task_type.strip().lower().replace("-", "_"))
        params["task_type"] = known.task_type if known else o.task_type.strip()
    if o.organization:
        params["organization_id"] = organization_id(o.organization)
    return params


LIST_COLUMNS = ("task id", "type", "status", "queue", "priority", "attempts", "queued at", "error")


def list_row(task: dict[str, Any]) -> list[Cell]:
    """One task as the cells of a task list (the id in full)."""
    queued_at = task.get("queued_at") or task.get("updated_at")
    attempts = task.get("attempts")
    error = task.get("error")
    return [
        str(task.get("task_id")),
        str(task.get("task_type") or "-"),
        styled_status(str(task.get("status"))),
        str(task.get("queue") or "-"),
        str(task.get("priority") or "-"),
        "-" if attempts is None else str(attempts),
        str(queued_at)[:19].replace("T", " ") if queued_at else "-",
        Text(str(error), style="red") if error else "-",
    ]


def render_list(console: Console, tasks: list[TaskState]) -> RenderableType:
    """One row (or, on a narrow terminal, one block) per task."""
    rows = [list_row(t.raw) for t in tasks]
    return render_records(console, "tasks", LIST_COLUMNS, rows, empty="no tasks", right=(5,))


def validated_task_id(task_id: str | None) -> str:
    """The ``--task-id`` value, which this action cannot do without and must be a UUID."""
    if not task_id:
        raise UsageError("--action=status needs --task-id=<task id>", param="--task-id")
    try:
        return str(uuid.UUID(task_id.strip()))
    except ValueError:
        raise UsageError(f"not a task id (a UUID): {task_id!r}", param="--task-id") from None


def render_state(state: TaskState) -> Panel:
    """A two-column panel of every field the gateway returned."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    ordered = [f for f in FIELD_ORDER if f in state.raw]
    ordered += [f for f in state.raw if f not in FIELD_ORDER]
    for name in ordered:
        grid.add_row(name, _value(name, state.raw[name]))
    return Panel(grid, title=f"task {state.task_id}", title_align="left", expand=False)


def _value(name: str, value: Any) -> Text:
    if name == "status" and isinstance(value, str):
        return styled_status(value)
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, float):
        return Text(f"{value:.1f}")
    if isinstance(value, dict | list):
        return Text(json.dumps(value, indent=2, default=str))
    return Text(str(value))
