"""``prs schedules``: list the scheduler's schedules, switch them on or off, re-time, run now.

Every command is an admin call of the gateway (``/api/automated-processes/schedules/``). Changes
are queued for the scheduler, which applies them at its next tick and records who asked; the
list shows a change once the scheduler has announced it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from prs_cli.client import ClientFactory, GatewayClient
from prs_cli.config import Config, resolve_api_key, resolve_gateway_url
from prs_cli.errors import CliError
from prs_cli.output import Output

SCHEDULES = "/api/automated-processes/schedules"

Name = Annotated[str, typer.Argument(help="A process name, e.g. system_cleanup.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def schedules_app(make_client: ClientFactory) -> typer.Typer:
    """The ``schedules`` group, its clients made by ``make_client``."""
    app = typer.Typer(help="The scheduler's schedules (admin key).", no_args_is_help=True)

    def run(
        ctx: typer.Context, json_flag: bool, call: Callable[[GatewayClient, Output], None]
    ) -> None:
        globals_ = ctx.obj
        output = Output(json_mode=json_flag or bool(getattr(globals_, "json_output", False)))
        try:
            config = Config(
                gateway_url=resolve_gateway_url(getattr(globals_, "gateway_url", None)),
                api_key=resolve_api_key(getattr(globals_, "api_key", None)),
                json_output=output.json_mode,
            )
            with make_client(config) as client:
                call(client, output)
        except CliError as exc:
            output.error(exc.message)
            raise typer.Exit(exc.exit_code) from None

    @app.command("list")
    def list_(ctx: typer.Context, json_output: Json = False) -> None:
        """Every schedule: enabled, cron expression, next and last run, who changed it."""
        run(ctx, json_output, lambda c, o: _show(o, c.get_json(f"{SCHEDULES}/")))

    @app.command("enable")
    def enable(ctx: typer.Context, name: Name, json_output: Json = False) -> None:
        """Switch a schedule's timer on (from its next time)."""
        run(ctx, json_output, lambda c, o: _queued(o, c, f"{SCHEDULES}/{name}/enable/", name))

    @app.command("disable")
    def disable(ctx: typer.Context, name: Name, json_output: Json = False) -> None:
        """Switch a schedule's timer off; run-now is refused until it is enabled again."""
        run(ctx, json_output, lambda c, o: _queued(o, c, f"{SCHEDULES}/{name}/disable/", name))

    @app.command("set")
    def set_(
        ctx: typer.Context,
        name: Name,
        cron: Annotated[str, typer.Argument(help="Five-field cron expression, UTC.")],
        json_output: Json = False,
    ) -> None:
        """Give a schedule a new cron expression (UTC), e.g. overdue_detection '0 2 * * *'."""

        def call(client: GatewayClient, output: Output) -> None:
            answer = client.patch_json(f"{SCHEDULES}/{name}/", {"cron": cron})
            _report(output, answer, f"{name}: cron {cron}")

        run(ctx, json_output, call)

    @app.command("run")
    def run_now(ctx: typer.Context, name: Name, json_output: Json = False) -> None:
        """Run a scheduled process now, through the scheduler."""
        run(ctx, json_output, lambda c, o: _queued(o, c, f"{SCHEDULES}/{name}/run/", name))

    return app


def _queued(output: Output, client: GatewayClient, path: str, name: str) -> None:
    task = client.queue(path, None, service="scheduler")
    _report(output, asdict(task), name)


def _report(output: Output, answer: Any, what: str) -> None:
    if output.json_mode:
        output.json(answer)
        return
    output.line(f"queued for the scheduler ({what}): task {answer.get('task_id')}")
    output.note("the scheduler applies it at its next tick; `prs schedules list` shows it then")


def _show(output: Output, schedules: Any) -> None:
    if output.json_mode:
        output.json(schedules)
        return
    table = Table("process", "enabled", "cron", "schedule", "next run", "last run", "changed by")
    for s in schedules:
        enabled = {True: "yes", False: "no"}.get(s.get("enabled"), "unknown")
        table.add_row(
            s["name"],
            enabled,
            s["cron"],
            s["schedule"],
            s.get("next_run") or "—",
            s.get("last_run_at") or "never",
            s.get("changed_by") or "—",
        )
    output.render(table)
