"""``--action=status --task-id=ID``: show one task's status, result and timings."""

from __future__ import annotations

import json
import uuid
from typing import Any

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from prs_cli.actions.context import ActionContext
from prs_cli.client import TaskState, status_path
from prs_cli.errors import CliError, ProblemError, UsageError
from prs_cli.output import styled_status

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


def run(ctx: ActionContext) -> int:
    """Fetch and show the task's status; exit 1 when the gateway knows no such task."""
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
