"""``--action=cleanup`` without ``--queue``: the system cleanup, planned or run.

``--dry-run`` asks every service for its part of the plan (``POST
/api/housekeeping/cleanup-plan/`` queues one ``housekeeping.cleanup_plan`` task per service) and
waits for the answers, like ``--action=test``: the gateway's registry rows, dead letters, reports
and their files, the file-processor's uploads and quarantine, and every service's inbox ids —
for each, the rows, bytes and files a run now would remove. Nothing is removed.

Without ``--dry-run`` the gateway's sweeps run now (``POST
/api/housekeeping/cleanup/?dry_run=false``) and the answer says what went; the other services'
parts run with their next ``schedule.session_cleanup`` tick (``prs schedules run system_cleanup``
to have it now). Both need an admin key not scoped to an organization.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from prs_cli.actions.context import ActionContext
from prs_cli.actions.test import poll
from prs_cli.client import TaskState
from prs_cli.errors import GatewayError

CLEANUP_PATH = "/api/housekeeping/cleanup/"
PLAN_PATH = "/api/housekeeping/cleanup-plan/"


def run(ctx: ActionContext) -> int:
    if ctx.options.dry_run:
        return plan(ctx)
    client = ctx.client()
    answer: Any = client.post_json(CLEANUP_PATH, params={"dry_run": "false"})
    if not isinstance(answer, dict) or not isinstance(answer.get("sweeps"), list):
        raise GatewayError("unexpected answer from the cleanup endpoint")
    sweeps = [{"service": "gateway", **s} for s in answer["sweeps"] if isinstance(s, dict)]
    if ctx.output.json_mode:
        ctx.output.json({"dry_run": False, "at": answer.get("at"), "sweeps": sweeps})
        return 0
    ctx.output.render(render_sweeps(sweeps, dry_run=False))
    ctx.output.line(f"removed {_rows(sweeps)} row(s), {human_bytes(_stored(sweeps))}")
    _say_left(ctx, sweeps)
    ctx.output.line(
        "the other services clean up at their next schedule.session_cleanup tick "
        "(prs schedules run system_cleanup runs it now)"
    )
    return 0


def plan(ctx: ActionContext) -> int:
    """Every service's part of the plan, once all answered or ``--timeout`` passed."""
    client = ctx.client()
    queued = client.queue_per_service(PLAN_PATH)
    states = poll(client, queued, timeout=ctx.options.timeout, interval=ctx.options.poll_interval)
    answers = {task.service: _answer(states.get(task.service)) for task in queued}
    sweeps = [
        {"service": service, **s} for service, answer in answers.items() for s in answer["sweeps"]
    ]
    missing = {service: a["error"] for service, a in answers.items() if a["error"]}
    if ctx.output.json_mode:
        at = next((a["at"] for a in answers.values() if a["at"]), None)
        ctx.output.json({"dry_run": True, "at": at, "services": answers, "sweeps": sweeps})
    else:
        ctx.output.render(render_sweeps(sweeps, dry_run=True))
        ctx.output.line(
            f"dry run: {_rows(sweeps)} row(s), {human_bytes(_stored(sweeps))} would be removed "
            f"(POST {client.url(CLEANUP_PATH)}?dry_run=false and the services' next "
            "schedule.session_cleanup); nothing was removed"
        )
        _say_left(ctx, sweeps)
    if missing:
        named = "; ".join(f"{service} ({error})" for service, error in missing.items())
        ctx.output.error(f"{len(missing)} of {len(answers)} services gave no plan: {named}")
        return 1
    return 0


def _answer(state: TaskState | None) -> dict[str, Any]:
    """One service's plan from its task's status: its sweeps, or why there are none."""
    if state is None:
        return {"status": None, "at": None, "sweeps": [], "error": "no status"}
    result = state.get("result")
    if state.status == "SUCCEEDED" and isinstance(result, dict):
        sweeps = [s for s in result.get("sweeps") or [] if isinstance(s, dict)]
        return {"status": state.status, "at": result.get("at"), "sweeps": sweeps, "error": None}
    error = state.get("error") or (
        state.status if state.terminal else f"still {state.status}, no answer yet"
    )
    return {"status": state.status, "at": None, "sweeps": [], "error": str(error)}


def _rows(sweeps: Sequence[Mapping[str, Any]]) -> int:
    return sum(int(s.get("rows", 0)) for s in sweeps)


def _stored(sweeps: Sequence[Mapping[str, Any]]) -> int:
    return sum(int(s.get("bytes", 0)) + int(s.get("file_bytes", 0)) for s in sweeps)


def _say_left(ctx: ActionContext, sweeps: Sequence[Mapping[str, Any]]) -> None:
    left = sum(int(s.get("left", 0)) for s in sweeps)
    if left:
        ctx.output.line(f"{left} row(s) past retention are left for the next run (batch limit)")


def render_sweeps(sweeps: Sequence[Mapping[str, Any]], *, dry_run: bool) -> Table:
    title = "would be removed (dry run)" if dry_run else "removed"
    table = Table(title=f"retention cleanup: {title}", title_justify="left")
    for name, justify in (
        ("service", "left"),
        ("job", "left"),
        ("what", "left"),
        ("older than", "right"),
        ("rows", "right"),
        ("bytes", "right"),
        ("files", "right"),
        ("file bytes", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for s in sweeps:
        table.add_row(
            str(s.get("service", "")),
            str(s.get("job", "")),
            str(s.get("kind", "")),
            human_age(float(s.get("retention_seconds", 0))),
            str(s.get("rows", 0)),
            str(s.get("bytes", 0)),
            str(s.get("files", 0)),
            str(s.get("file_bytes", 0)),
        )
    return table


def human_age(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g}d"
    return f"{seconds / 3600:g}h"


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"
