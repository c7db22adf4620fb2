"""``--action=cleanup``: the seed's "cleanup failed tasks".

Without ``--queue``: the retention cleanup the scheduler runs hourly, planned (``--dry-run``) or
run now — see :mod:`prs_cli.actions.retention`. With ``--queue``: every dead letter of that queue,
listed, then purged whatever its age. Listing needs an operator key; purging needs an admin key
(the gateway's 403 is shown as is). ``--dry-run`` lists only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from prs_cli.actions import retention
from prs_cli.actions.context import ActionContext
from prs_cli.client import GatewayClient
from prs_cli.errors import GatewayError

DEAD_LETTERS_PATH = "/api/dead-letters/"


def run(ctx: ActionContext) -> int:
    """The retention cleanup, or with ``--queue`` that queue's dead letters."""
    if not ctx.options.queue:
        return retention.run(ctx)
    return purge_dead_letters(ctx)


def purge_dead_letters(ctx: ActionContext) -> int:
    """Count dead letters per queue and, unless ``--dry-run``, delete them."""
    queue = ctx.options.queue
    scope: dict[str, str | int] = {"queue": queue} if queue else {}
    client = ctx.client()
    waiting, waiting_total = _count(client, {**scope, "replayed": "false"})
    _, replayed_total = _count(client, {**scope, "replayed": "true"})
    if queue:
        # The per-queue counts always cover every queue; keep the one asked for.
        waiting = {queue: waiting_total} if waiting_total else {}
    total = waiting_total + replayed_total

    removed = 0
    if total and not ctx.options.dry_run:
        answer = client.delete_json(DEAD_LETTERS_PATH, params=scope)
        if not isinstance(answer, dict) or not isinstance(answer.get("purged"), int):
            raise GatewayError("unexpected answer from the dead-letter purge")
        removed = answer["purged"]

    if ctx.output.json_mode:
        ctx.output.json(
            {
                "queue": queue,
                "dead_letters": {
                    "by_queue": waiting,
                    "waiting": waiting_total,
                    "replayed": replayed_total,
                },
                "dry_run": ctx.options.dry_run,
                "removed": removed,
            }
        )
        return 0
    where = f" on queue {queue}" if queue else ""
    if not total:
        ctx.output.line(f"no dead letters{where}; nothing to clean up")
        return 0
    ctx.output.render(render_counts(waiting, replayed_total))
    if ctx.options.dry_run:
        url = client.url(DEAD_LETTERS_PATH)
        ctx.output.line(f"dry run: would DELETE {url}{'?queue=' + queue if queue else ''}")
        ctx.output.line(f"{total} dead letter(s){where} would be removed; nothing was removed")
    else:
        ctx.output.line(f"removed {removed} dead letter(s){where}")
    return 0


def render_counts(by_queue: Mapping[str, int], replayed: int) -> Table:
    """Dead letters waiting per queue, and those already replayed (kept as a record)."""
    table = Table(title="dead letters", title_justify="left")
    table.add_column("queue", no_wrap=True)
    table.add_column("dead letters", justify="right", no_wrap=True)
    for name, count in sorted(by_queue.items()):
        table.add_row(name, str(count))
    if replayed:
        table.add_row("(already replayed)", str(replayed))
    return table


def _count(client: GatewayClient, params: dict[str, str | int]) -> tuple[dict[str, int], int]:
    body: Any = client.get_json(DEAD_LETTERS_PATH, params={**params, "limit": 1})
    if not isinstance(body, dict) or not isinstance(body.get("total"), int):
        raise GatewayError("unexpected answer from the dead-letter list")
    by_queue = body.get("by_queue") or {}
    return {str(k): int(v) for k, v in by_queue.items()}, body["total"]
