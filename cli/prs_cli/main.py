"""The ``prs`` command: manage the background tasks of PRS Tasks through the gateway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from prs_cli.actions import run_action
from prs_cli.actions.context import Action, ActionContext, ManageOptions, Priority, Service
from prs_cli.client import ClientFactory, client_factory
from prs_cli.config import Config, resolve_gateway_url
from prs_cli.errors import CliError, UsageError
from prs_cli.output import Output

EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class GlobalOptions:
    """What ``prs`` itself was given, before the subcommand."""

    gateway_url: str | None
    api_key: str | None
    json_output: bool


def build_app(factory: ClientFactory | None = None) -> typer.Typer:
    """The ``prs`` application; ``factory`` decides how gateway clients are made (tests)."""
    make_client = factory or client_factory()
    app = typer.Typer(
        name="prs",
        help="Manage the background tasks of PRS Tasks through its gateway.",
        no_args_is_help=True,
        add_completion=False,
        # Expected errors are reported as one line; anything else is a bug and keeps its
        # ordinary traceback rather than a page of locals.
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def prs(
        ctx: typer.Context,
        gateway_url: Annotated[
            str | None,
            typer.Option(
                "--gateway-url",
                envvar="PRS_GATEWAY_URL",
                help="Base URL of the gateway (default: http://127.0.0.1:$PRS_GATEWAY_PORT "
                "when that is set, else http://127.0.0.1:8000).",
            ),
        ] = None,
        api_key: Annotated[
            str | None,
            typer.Option(
                "--api-key",
                envvar=["PRS_API_KEY", "PRS_ADMIN_API_KEY"],
                help="API key sent as 'Authorization: Bearer <key>'.",
            ),
        ] = None,
        json_output: Annotated[
            bool, typer.Option("--json", help="Machine-readable JSON on stdout.")
        ] = False,
    ) -> None:
        """Manage the background tasks of PRS Tasks through its gateway."""
        ctx.obj = GlobalOptions(gateway_url, api_key, json_output)

    @app.command("manage-background-tasks")
    def manage_background_tasks(
        ctx: typer.Context,
        action: Annotated[
            Action,
            typer.Option("--action", case_sensitive=False, help="What to do."),
        ],
        task_type: Annotated[
            str | None, typer.Option("--task-type", help="Task type (for --action=queue).")
        ] = None,
        priority: Annotated[
            Priority | None,
            typer.Option("--priority", case_sensitive=False, help="Priority of queued tasks."),
        ] = None,
        task_id: Annotated[
            str | None, typer.Option("--task-id", help="Task id (for --action=status).")
        ] = None,
        organization: Annotated[
            str | None,
            typer.Option(
                "--organization",
                help="Organization; with --action=test it travels as the diagnostic's note.",
            ),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Show what would be sent; send nothing.")
        ] = False,
        service: Annotated[
            list[Service] | None,
            typer.Option(
                "--service",
                case_sensitive=False,
                help="Service to test (repeatable; all five by default).",
            ),
        ] = None,
        timeout: Annotated[
            float,
            typer.Option("--timeout", min=0, help="Seconds --action=test waits for answers."),
        ] = 30.0,
        json_output: Annotated[
            bool, typer.Option("--json", help="Machine-readable JSON on stdout.")
        ] = False,
        gateway_url: Annotated[
            str | None,
            typer.Option("--gateway-url", help="Same as `prs --gateway-url`.", show_default=False),
        ] = None,
        api_key: Annotated[
            str | None,
            typer.Option("--api-key", help="Same as `prs --api-key`.", show_default=False),
        ] = None,
    ) -> None:
        """Queue, monitor, inspect, test and clean up background tasks.

        Examples: --action=test --organization="MyOrg"; --action=status --task-id=<id>.
        """
        globals_: GlobalOptions = ctx.obj or GlobalOptions(None, None, False)
        output = Output(json_mode=json_output or globals_.json_output)
        options = ManageOptions(
            action=action,
            task_type=task_type,
            priority=priority,
            task_id=task_id,
            organization=organization,
            dry_run=dry_run,
            # Asking twice for the same service would only queue a second identical ping.
            services=tuple(dict.fromkeys(s.value for s in service or ())),
            timeout=timeout,
        )
        try:
            config = Config(
                # Given after the subcommand, these win over the global flags and environment.
                gateway_url=resolve_gateway_url(gateway_url or globals_.gateway_url),
                api_key=api_key or globals_.api_key,
                json_output=output.json_mode,
            )
            code = run_action(ActionContext(config, options, output, make_client))
        except UsageError as exc:
            # Reported like any other bad flag: usage line, the flag named, exit code 2.
            hint = f"'{exc.param}'" if exc.param else None
            raise typer.BadParameter(exc.message, ctx=ctx, param_hint=hint) from None
        except CliError as exc:
            output.error(exc.message)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            output.error("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        raise typer.Exit(code)

    return app


app = build_app()
