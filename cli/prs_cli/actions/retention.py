"""``--action=cleanup`` without ``--queue``: the gateway's retention cleanup, planned or run.

The gateway computes the plan (``POST /api/housekeeping/cleanup/?dry_run=true``): for each kind
of row past its retention, the rows, bytes and files the run would remove now. ``--dry-run``
shows it; otherwise the same endpoint runs it (``dry_run=false``) and the answer says what went.
Both need an admin key not scoped to an organization.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from prs_cli.actions.context import ActionContext
from prs_cli.errors import GatewayError

CLEANUP_PATH = "/api/housekeeping/cleanup/"


def run(ctx: ActionContext) -> int:
    dry_run = ctx.options.dry_run
    client = ctx.client()
    answer: Any = client.post_json(CLEANUP_PATH, params={"dry_run": str(dry_run).lower()})
    if not isinstance(answer, dict) or not isinstance(answer.get("sweeps"), list):
        raise GatewayError("unexpected answer from the cleanup endpoint")
    sweeps: list[Mapping[str, Any]] = [s for s in answer["sweeps"] if isinstance(s, dict)]
    rows = sum(int(s.get("rows", 0)) for s in sweeps)
    stored = sum(int(s.get("bytes", 0)) + int(s.get("file_bytes", 0)) for s in sweeps)
    if ctx.output.json_mode:
        ctx.output.json({"dry_run": dry_run, "at": answer.get("at"), "sweeps": sweeps})
        return 0
    ctx.output.render(render_sweeps(sweeps, dry_run=dry_run))
    if dry_run:
        ctx.output.line(
            f"dry run: {rows} row(s), {human_bytes(stored)} would be removed "
            f"(POST {client.url(CLEANUP_PATH)}?dry_run=false); nothing was removed"
        )
    else:
        ctx.output.line(f"removed {rows} row(s), {human_bytes(stored)}")
    left = sum(int(s.get("left", 0)) for s in sweeps)
    if left:
        ctx.output.line(f"{left} row(s) past retention are left for the next run (batch limit)")
    return 0


def render_sweeps(sweeps: Sequence[Mapping[str, Any]], *, dry_run: bool) -> Table:
    title = "would be removed (dry run)" if dry_run else "removed"
    table = Table(title=f"retention cleanup: {title}", title_justify="left")
    for name, justify in (
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
