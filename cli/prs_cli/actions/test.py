"""``--action=test``: send the diagnostic task to every service and wait for each answer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from prs_cli.actions.context import SERVICES, ActionContext
from prs_cli.client import (
    GatewayClient,
    QueuedTask,
    TaskState,
    diagnostic_body,
    diagnostic_path,
    status_path,
)
from prs_cli.errors import UsageError
from prs_cli.output import styled_status

# The gateway refuses a longer diagnostic note.
MAX_NOTE_CHARS = 500


@dataclass(frozen=True)
class Outcome:
    """How one service answered (or did not answer) its diagnostic task."""

    service: str
    task_id: str
    status: str
    ok: bool
    worker: str | None
    latency_ms: float | None
    error: str | None


def run(ctx: ActionContext) -> int:
    """Queue the diagnostic for the services, poll until all finish; 0 only if all succeeded."""
    opts = ctx.options
    services = opts.services or SERVICES
    # The gateway takes the organization from the API key, so the flag travels as the note.
    note = opts.organization
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise UsageError(f"at most {MAX_NOTE_CHARS} characters", param="--organization")
    for flag, value in (
        ("--task-type", opts.task_type),
        ("--priority", opts.priority),
        ("--task-id", opts.task_id),
    ):
        if value is not None:
            # Diagnostic tasks have a fixed type and are always queued at high priority.
            ctx.output.note(f"{flag} is ignored by --action=test")
    if opts.dry_run:
        _show_plan(ctx, services, note)
        return 0

    client = ctx.client()
    queued = client.queue_diagnostic(services, note)
    states = poll(client, queued, timeout=opts.timeout, interval=opts.poll_interval)
    outcomes = [outcome(task, states.get(task.service), opts.timeout) for task in queued]
    failures = [o for o in outcomes if not o.ok]

    if ctx.output.json_mode:
        ctx.output.json(
            {"ok": not failures, "services": {o.service: _as_json(o) for o in outcomes}}
        )
    else:
        ctx.output.render(render_outcomes(outcomes))
    if failures:
        named = "; ".join(f"{o.service} ({o.error or o.status})" for o in failures)
        ctx.output.error(f"{len(failures)} of {len(outcomes)} services failed: {named}")
        return 1
    if not ctx.output.json_mode:
        ctx.output.line(f"all {len(outcomes)} services answered")
    return 0


def poll(
    client: GatewayClient,
    queued: Sequence[QueuedTask],
    *,
    timeout: float,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, TaskState]:
    """The last seen state of each service's task, once all are terminal or ``timeout`` passed.

    Every task is asked at least once, so ``timeout=0`` still reports where each one is. Each
    request is held by the gateway until its task has finished (``?wait=``), so a task's end is
    seen when it happens; ``interval`` paces the rounds only when a gateway answered sooner than
    asked (one that does not hold).
    """
    deadline = clock() + timeout
    states: dict[str, TaskState] = {}
    pending = list(queued)
    while True:
        still: list[QueuedTask] = []
        early = False
        for task in pending:
            hold = max(0.0, min(deadline - clock(), client.longest_hold))
            asked = clock()
            state = client.task_status(task.task_id, wait=hold)
            states[task.service] = state
            if not state.terminal:
                still.append(task)
                early = early or clock() - asked < hold / 2
        pending = still
        remaining = deadline - clock()
        if not pending or remaining <= 0:
            return states
        if early:
            sleep(min(interval, remaining))


def outcome(task: QueuedTask, state: TaskState | None, timeout: float) -> Outcome:
    """Judge one service's answer: it must have SUCCEEDED, answered by that very service."""
    if state is None:
        return Outcome(task.service, task.task_id, task.status, False, None, None, "no status")
    result = state.get("result") if isinstance(state.get("result"), dict) else {}
    worker = state.get("worker") or result.get("worker")
    answered_by = state.get("service") or result.get("service")
    error: str | None = state.get("error")
    ok = state.status == "SUCCEEDED"
    if not state.terminal:
        error = f"still {state.status} after {timeout:g}s"
    elif ok and answered_by and answered_by != task.service:
        # A queue consumed by the wrong service is a deployment mistake worth failing on.
        ok, error = False, f"answered by {answered_by}, not {task.service}"
    elif not ok and not error:
        error = state.status
    return Outcome(
        service=task.service,
        task_id=task.task_id,
        status=state.status,
        ok=ok,
        worker=str(worker) if worker else None,
        latency_ms=latency_ms(state.raw),
        error=error,
    )


def latency_ms(raw: dict[str, Any]) -> float | None:
    """Queued-to-finished time of a task, or the handler's duration when timings are missing."""
    queued, finished = _when(raw.get("queued_at")), _when(raw.get("finished_at"))
    if queued is not None and finished is not None:
        return round((finished - queued).total_seconds() * 1000, 1)
    duration = raw.get("duration_ms")
    return float(duration) if isinstance(duration, int | float) else None


def render_outcomes(outcomes: Sequence[Outcome]) -> Table:
    """The table people see: one row per service."""
    table = Table(title="diagnostic", title_justify="left")
    table.add_column("service", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("worker", overflow="fold")
    table.add_column("latency ms", justify="right", no_wrap=True)
    table.add_column("error", overflow="fold")
    for o in outcomes:
        table.add_row(
            o.service,
            _status_cell(o),
            o.worker or "-",
            f"{o.latency_ms:.0f}" if o.latency_ms is not None else "-",
            Text(o.error, style="red") if o.error else "",
        )
    return table


def _status_cell(o: Outcome) -> Text:
    # SUCCEEDED from the wrong service is still a failure, so it must not show green.
    if o.status == "SUCCEEDED" and not o.ok:
        return Text(o.status, style="red")
    return styled_status(o.status)


def _show_plan(ctx: ActionContext, services: Sequence[str], note: str | None) -> None:
    url = ctx.config.gateway_url + diagnostic_path()
    body = diagnostic_body(services, note)
    poll_url = ctx.config.gateway_url + status_path("{task_id}")
    if ctx.output.json_mode:
        ctx.output.json(
            {
                "dry_run": True,
                "requests": [{"method": "POST", "url": url, "body": body}],
                "then": f"GET {poll_url} for each task, for up to {ctx.options.timeout:g}s",
            }
        )
        return
    ctx.output.line(f"dry run: would POST {url}")
    ctx.output.line(f"  body: {json.dumps(body)}")
    ctx.output.line(
        f"  then GET {poll_url} for each task until it finishes "
        f"(up to {ctx.options.timeout:g}s); nothing was sent"
    )


def _as_json(o: Outcome) -> dict[str, Any]:
    data = asdict(o)
    del data["service"]
    return data


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
