"""``prs tasks list|show|cancel|retry``: an operator's view of the gateway's task registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from prs_cli.actions.queue import organization_id
from prs_cli.actions.status import STATUSES, render_list, render_state, validated_task_id
from prs_cli.client import API_PREFIX, ClientFactory, TaskState
from prs_cli.command import Invocation, run_guarded
from prs_cli.errors import CliError, GatewayError, ProblemError, UsageError

R = TypeVar("R")
JSON_HELP = "Machine-readable JSON on stdout."


def register(app: typer.Typer, make_client: ClientFactory) -> None:
    """Add the ``tasks`` group to ``app``."""
    tasks = typer.Typer(help="List, inspect, cancel and retry tasks.", no_args_is_help=True)
    app.add_typer(tasks, name="tasks")

    @tasks.command("list")
    def list_(
        ctx: typer.Context,
        status: Annotated[
            str | None, typer.Option("--status", help=f"One of {', '.join(STATUSES)}.")
        ] = None,
        task_type: Annotated[
            str | None, typer.Option("--task-type", help="e.g. diagnostic.ping.")
        ] = None,
        queue: Annotated[str | None, typer.Option("--queue", help="Only this queue.")] = None,
        organization: Annotated[
            str | None,
            typer.Option("--organization", help="Organization id or demo name."),
        ] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
        offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
        json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    ) -> None:
        """The most recent tasks, newest first."""
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if status:
            wanted = status.strip().upper()
            if wanted not in STATUSES:
                raise typer.BadParameter(
                    f"{status!r} is not one of: {', '.join(STATUSES)}", param_hint="'--status'"
                )
            params["status"] = wanted
        for name, value in (
            ("task_type", task_type),
            ("queue", queue),
            ("organization_id", organization_id(organization) if organization else None),
        ):
            if value:
                params[name] = value.strip()

        def body(inv: Invocation) -> int:
            with inv.client() as client:
                page = client.get_json(f"{API_PREFIX}/", params=params)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise GatewayError("unexpected answer from the task list")
            if inv.output.json_mode:
                inv.output.json(page)
                return 0
            items = [
                TaskState(str(t.get("task_id")), str(t.get("status")), t) for t in page["items"]
            ]
            inv.output.render(render_list(inv.output.out, items))
            inv.output.line(f"{len(items)} of {page.get('total', len(items))} task(s)")
            return 0

        run_guarded(ctx, make_client, json_output, body)

    @tasks.command("show")
    def show(
        ctx: typer.Context,
        task_id: Annotated[str, typer.Argument(help="The task id.")],
        json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    ) -> None:
        """Everything the gateway records about one task."""

        def body(inv: Invocation) -> int:
            tid = _task_id(task_id)
            with inv.client() as client:
                state = _known(tid, lambda: client.task_status(tid))
            if inv.output.json_mode:
                inv.output.json(state.raw)
            else:
                inv.output.render(render_state(state))
            return 0

        run_guarded(ctx, make_client, json_output, body)

    @tasks.command("cancel")
    def cancel(
        ctx: typer.Context,
        task_id: Annotated[str, typer.Argument(help="A QUEUED or RETRYING task.")],
        json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    ) -> None:
        """Cancel a task that has not started yet (or waits for its next attempt)."""

        def body(inv: Invocation) -> int:
            tid = _task_id(task_id)
            with inv.client() as client:
                answer = _known(tid, lambda: client.post_json(f"{API_PREFIX}/{tid}/cancel/"))
            if inv.output.json_mode:
                inv.output.json(answer)
            else:
                inv.output.line(f"cancel requested for task {tid} (was {answer.get('status')})")
            return 0

        run_guarded(ctx, make_client, json_output, body)

    @tasks.command("retry")
    def retry(
        ctx: typer.Context,
        task_id: Annotated[str, typer.Argument(help="A FAILED, DEAD_LETTERED or CANCELLED task.")],
        json_output: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    ) -> None:
        """Run a finished task again under the same id."""

        def body(inv: Invocation) -> int:
            tid = _task_id(task_id)
            with inv.client() as client:
                answer = _known(tid, lambda: client.post_json(f"{API_PREFIX}/{tid}/retry/"))
            if inv.output.json_mode:
                inv.output.json(answer)
            else:
                inv.output.line(f"task {tid} queued again on {answer.get('queue')}")
                inv.output.line(f"status: {answer.get('status_url')}")
            return 0

        run_guarded(ctx, make_client, json_output, body)


def _task_id(raw: str) -> str:
    try:
        return validated_task_id(raw)
    except UsageError as exc:
        raise UsageError(exc.message, param="TASK_ID") from None


def _known(task_id: str, call: Callable[[], R]) -> R:
    try:
        return call()
    except ProblemError as exc:
        if exc.status == 404:
            raise CliError(f"no task {task_id}") from exc
        raise
