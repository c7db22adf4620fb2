"""``prs dlq list|show|replay|purge``: the gateway's dead letters, for operators."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from prs_cli.client import ClientFactory, GatewayClient
from prs_cli.command import Invocation, run_guarded
from prs_cli.errors import CliError, GatewayError, ProblemError, UsageError
from prs_cli.records import render_records

PATH = "/api/dead-letters/"
JSON_HELP = "Machine-readable JSON on stdout."
LIST_COLUMNS = ("id", "queue", "reason", "attempts", "type", "task id", "dead-lettered at")
DETAIL_ORDER = (
    "id",
    "queue",
    "reason",
    "attempts",
    "last_error",
    "message_type",
    "message_id",
    "task_id",
    "organization_id",
    "dead_lettered_at",
    "replayed_at",
    "body_bytes",
    "headers",
    "body",
)


def register(app: typer.Typer, make_client: ClientFactory) -> None:
    """Add the ``dlq`` group to ``app``."""
    dlq = typer.Typer(
        help="List, inspect, replay and purge dead-lettered messages.", no_args_is_help=True
    )
    app.add_typer(dlq, name="dlq")

    @dlq.command("list")
    def list_(
        ctx: typer.Context,
        queue: Annotated[str | None, typer.Option("--queue", help="Only this queue.")] = None,
        reason: Annotated[
            str | None, typer.Option("--reason", help="e.g. retries_exhausted, invalid_payload.")
        ] = None,
        replayed: Annotated[
            bool, typer.Option("--replayed", help="The ones already replayed instead.")
        ] = False,
        limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
        offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
        json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    ) -> None:
        """Dead letters waiting for a decision (newest first) and their count per queue."""
        params: dict[str, str | int] = {
            "limit": limit,
            "offset": offset,
            "replayed": "true" if replayed else "false",
        }
        if queue:
            params["queue"] = queue
        if reason:
            params["reason"] = reason

        def body(inv: Invocation) -> int:
            with inv.client() as client:
                page = client.get_json(PATH, params=params)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise GatewayError("unexpected answer from the dead-letter list")
            if inv.output.json_mode:
                inv.output.json(page)
                return 0
            rows = [list_row(d) for d in page["items"]]
            title = "dead letters (replayed)" if replayed else "dead letters"
            inv.output.render(render_records(inv.output.out, title, LIST_COLUMNS, rows))
            counts = ", ".join(f"{q}: {n}" for q, n in sorted((page.get("by_queue") or {}).items()))
            inv.output.line(
                f"{len(rows)} of {page.get('total', len(rows))}"
                + (f"; waiting per queue: {counts}" if counts else "")
            )
            return 0

        run_guarded(ctx, make_client, json_output, body)

    @dlq.command("show")
    def show(
        ctx: typer.Context,
        dead_letter_id: Annotated[str, typer.Argument(help="The dead letter's id.")],
        json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    ) -> None:
        """One dead letter: why it died, its headers and its whole body."""

        def body(inv: Invocation) -> int:
            with inv.client() as client:
                detail = _known(client, dead_letter_id)
            if inv.output.json_mode:
                inv.output.json(detail)
            else:
                inv.output.render(render_detail(detail))
            return 0

        run_guarded(ctx, make_client, json_output, body)

    @dlq.command("replay")
    def replay(
        ctx: typer.Context,
        dead_letter_id: Annotated[
            str | None, typer.Argument(help="One dead letter (or use --queue for all).")
        ] = None,
        queue: Annotated[
            str | None, typer.Option("--queue", help="Replay every waiting one of this queue.")
        ] = None,
        batch_size: Annotated[
            int,
            typer.Option("--batch-size", min=1, max=10_000, help="Dead letters per request."),
        ] = 200,
        json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    ) -> None:
        """Send dead letters back to their queue (their attempts start again at 1).

        With --queue, in batches of --batch-size with a progress bar on stderr, until none is left
        of those waiting when it began.
        """

        def body(inv: Invocation) -> int:
            if (dead_letter_id is None) == (queue is None):
                raise UsageError("give a dead letter id or --queue, not both", param="--queue")
            with inv.client() as client:
                if dead_letter_id is not None:
                    answer = _missing_is_one_line(
                        dead_letter_id,
                        lambda: client.post_json(f"{PATH}{quote(dead_letter_id, safe='')}/replay"),
                    )
                    replayed = _replayed(answer)
                else:
                    replayed = _replay_queue(inv, client, str(queue), batch_size)
            if inv.output.json_mode:
                inv.output.json({"queue": queue, "replayed": replayed})
            else:
                inv.output.line(f"replayed {replayed} dead letter(s)")
            return 0

        run_guarded(ctx, make_client, json_output, body)

    @dlq.command("purge")
    def purge(
        ctx: typer.Context,
        queue: Annotated[str | None, typer.Option("--queue", help="Only this queue.")] = None,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
        json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    ) -> None:
        """Delete dead letters for good (admin key); asks first unless --yes."""
        scope: dict[str, str | int] = {"queue": queue} if queue else {}

        def body(inv: Invocation) -> int:
            with inv.client() as client:
                total = sum(
                    _total(client, {**scope, "replayed": flag, "limit": 1})
                    for flag in ("false", "true")
                )
                where = f" of queue {queue}" if queue else ""
                # The question goes to stderr so that --json output stays one document.
                question = f"delete {total} dead letter(s){where} for good?"
                if total and not yes and not typer.confirm(question, err=True):
                    raise CliError("nothing purged")
                purged = 0
                if total:
                    answer = client.delete_json(PATH, params=scope)
                    if not isinstance(answer, dict) or not isinstance(answer.get("purged"), int):
                        raise GatewayError("unexpected answer from the dead-letter purge")
                    purged = answer["purged"]
            if inv.output.json_mode:
                inv.output.json({"queue": queue, "purged": purged})
            else:
                inv.output.line(f"purged {purged} dead letter(s){where}")
            return 0

        run_guarded(ctx, make_client, json_output, body)


def list_row(d: dict[str, Any]) -> list[Any]:
    """One dead letter as the cells of the list (ids in full)."""
    at = d.get("dead_lettered_at")
    return [
        str(d.get("id")),
        str(d.get("queue") or "-"),
        Text(str(d.get("reason") or "-"), style="red"),
        str(d.get("attempts") if d.get("attempts") is not None else "-"),
        str(d.get("message_type") or "-"),
        str(d.get("task_id") or "-"),
        str(at)[:19].replace("T", " ") if at else "-",
    ]


def render_detail(detail: dict[str, Any]) -> Panel:
    """Every field, the known ones first; headers and body as indented JSON."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    names = [n for n in DETAIL_ORDER if n in detail]
    names += [n for n in detail if n not in DETAIL_ORDER and not n.startswith("body_")]
    for name in names:
        value = detail[name]
        if isinstance(value, dict | list):
            text = Text(json.dumps(value, indent=2, default=str))
        else:
            text = Text("-" if value is None else str(value), style="dim" if value is None else "")
        grid.add_row(name, text)
    return Panel(grid, title=f"dead letter {detail.get('id')}", title_align="left", expand=False)


def _known(client: GatewayClient, dead_letter_id: str) -> dict[str, Any]:
    path = f"{PATH}{quote(dead_letter_id, safe='')}"
    detail = _missing_is_one_line(dead_letter_id, lambda: client.get_json(path))
    if not isinstance(detail, dict):
        raise GatewayError("unexpected answer from the dead letter")
    return detail


def _missing_is_one_line(dead_letter_id: str, call: Any) -> Any:
    try:
        return call()
    except ProblemError as exc:
        if exc.status == 404:
            raise CliError(f"no dead letter {dead_letter_id}") from exc
        raise


def _replay_queue(inv: Invocation, client: GatewayClient, queue: str, batch_size: int) -> int:
    """Replay a queue's waiting dead letters a batch at a time, with a bar; returns how many.

    One request per batch keeps each of the gateway's transactions small, and the bar moves. Only
    the ones waiting at the start are counted: a message dead-lettered again while this runs
    (its cause is still there) waits for a decision instead of being replayed in a loop.
    """
    waiting = _total(client, {"queue": queue, "replayed": "false", "limit": 1})
    replayed = 0
    with inv.output.progress("replaying") as progress:
        bar = progress.add_task(queue, total=waiting)
        while replayed < waiting:
            limit = min(batch_size, waiting - replayed)
            answer = client.post_json(f"{PATH}replay", params={"queue": queue, "limit": limit})
            done = _replayed(answer)
            if done == 0:
                break  # someone else replayed or purged the rest meanwhile
            replayed += done
            progress.update(bar, completed=replayed)
    return replayed


def _replayed(answer: Any) -> int:
    if not isinstance(answer, dict) or not isinstance(answer.get("replayed"), int):
        raise GatewayError("unexpected answer from the replay")
    return int(answer["replayed"])


def _total(client: GatewayClient, params: dict[str, str | int]) -> int:
    body = client.get_json(PATH, params=params)
    if not isinstance(body, dict) or not isinstance(body.get("total"), int):
        raise GatewayError("unexpected answer from the dead-letter list")
    return int(body["total"])
