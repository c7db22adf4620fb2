"""The ``prs`` command: manage the background tasks of PRS Tasks through the gateway."""

from __future__ import annotations

from typing import Annotated

import typer

from prs_cli import dlq_cmd, tasks_cmd
from prs_cli.actions import run_action
from prs_cli.actions.context import Action, ActionContext, ManageOptions, Priority, Service
from prs_cli.client import ClientFactory, client_factory
from prs_cli.command import EXIT_INTERRUPTED, GlobalOptions, usage_error
from prs_cli.config import Config, resolve_api_key, resolve_gateway_url
from prs_cli.errors import CliError, UsageError
from prs_cli.output import Output
from prs_cli.schedules import schedules_app


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
            str | None,
            typer.Option(
                "--task-type",
                help="For --action=queue: deal_processing, file_processing, notification, "
                "verification_reminders, commission_calculation, overdue_detection, audit_report "
                "or diagnostic. For --action=status without --task-id: only tasks of this type.",
            ),
        ] = None,
        priority: Annotated[
            Priority | None,
            typer.Option("--priority", case_sensitive=False, help="Priority of queued tasks."),
        ] = None,
        task_id: Annotated[
            str | None,
            typer.Option(
                "--task-id", help="Task id (for --action=status; without it, recent tasks)."
            ),
        ] = None,
        organization: Annotated[
            str | None,
            typer.Option(
                "--organization",
                help="Organization (id, or a demo organization's name) the task is queued for "
                "(keys not scoped to one); with --action=test and the diagnostic task type it "
                "travels as the note instead.",
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
            typer.Option(
                "--timeout", min=0, help="Seconds --action=test and --wait wait for answers."
            ),
        ] = 30.0,
        wait: Annotated[
            bool,
            typer.Option(
                "--wait",
                help="With --action=queue: follow the task until it finishes (exit 1 unless "
                "it SUCCEEDED).",
            ),
        ] = False,
        deal_id: Annotated[
            str | None,
            typer.Option(
                "--deal-id",
                help="Deal (deal_processing: without it, every deal awaiting an action; "
                "notification; file_processing).",
            ),
        ] = None,
        workflow_action: Annotated[
            str | None,
            typer.Option(
                "--workflow-action",
                help="deal_processing: verify_deal (default), calculate_commission, "
                "update_payment_status or generate_invoice.",
                show_default=False,
            ),
        ] = None,
        notification_type: Annotated[
            str | None,
            typer.Option(
                "--notification-type",
                help="notification (required), e.g. verification_approved, payment_received, "
                "deal_overdue, password_expiry_warning.",
            ),
        ] = None,
        user_id: Annotated[
            str | None,
            typer.Option(
                "--user-id",
                help="notification: the recipient (required); deal_processing: who asked.",
            ),
        ] = None,
        report_type: Annotated[
            str | None,
            typer.Option(
                "--report-type",
                help="audit_report: comprehensive (default), deals, payments, users or security.",
                show_default=False,
            ),
        ] = None,
        days: Annotated[
            int | None,
            typer.Option("--days", min=1, max=3650, help="audit_report: days covered (30)."),
        ] = None,
        file_path: Annotated[
            str | None,
            typer.Option("--file-path", help="file_processing: a file in the upload directory."),
        ] = None,
        file_type: Annotated[
            str | None,
            typer.Option(
                "--file-type", help="file_processing: profile_picture (default) or deal_attachment."
            ),
        ] = None,
        queue: Annotated[
            str | None,
            typer.Option("--queue", help="--action=cleanup: only this queue's dead letters."),
        ] = None,
        status: Annotated[
            str | None,
            typer.Option(
                "--status", help="--action=status without --task-id: only tasks in this status."
            ),
        ] = None,
        limit: Annotated[
            int,
            typer.Option(
                "--limit", min=1, max=500, help="--action=status without --task-id: how many."
            ),
        ] = 20,
        watch: Annotated[
            bool,
            typer.Option("--watch", help="--action=monitor: a live view, refreshed until Ctrl-C."),
        ] = False,
        interval: Annotated[
            float, typer.Option("--interval", min=0.1, help="--watch: seconds between refreshes.")
        ] = 2.0,
        iterations: Annotated[int | None, typer.Option("--iterations", min=1, hidden=True)] = None,
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

        Examples: --action=queue --task-type=deal_processing --deal-id=42 --priority=high;
        --action=monitor; --action=status --task-id=<id>; --action=test --organization="MyOrg";
        --action=cleanup --dry-run.
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
            wait=wait,
            deal_id=deal_id,
            workflow_action=workflow_action,
            notification_type=notification_type,
            user_id=user_id,
            report_type=report_type,
            days=days,
            file_path=file_path,
            file_type=file_type,
            queue=queue,
            status=status,
            limit=limit,
            watch=watch,
            interval=interval,
            iterations=iterations,
        )
        try:
            config = Config(
                # Given after the subcommand, these win over the global flags and environment.
                gateway_url=resolve_gateway_url(gateway_url or globals_.gateway_url),
                api_key=resolve_api_key(api_key or globals_.api_key),
                json_output=output.json_mode,
            )
            code = run_action(ActionContext(config, options, output, make_client))
        except UsageError as exc:
            usage_error(ctx, exc)
        except CliError as exc:
            output.error(exc.message)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            output.error("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        raise typer.Exit(code)

    @app.command("seed-demo")
    def seed_demo(
        ctx: typer.Context,
        prefix: Annotated[
            str,
            typer.Option(
                "--prefix",
                help="Start of every id (organizations are <prefix>-acme and <prefix>-globex). "
                "Running again with the same prefix changes nothing; a new prefix adds a second, "
                "independent set.",
            ),
        ] = "demo",
        snapshot_version: Annotated[
            int,
            typer.Option(
                "--snapshot-version",
                min=1,
                help="Version of the snapshots; a higher one is published as *.changed and "
                "replaces what the replicas hold.",
            ),
        ] = 1,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print the ids; publish nothing.")
        ] = False,
    ) -> None:
        """Load demo organizations, users, deals and payments by publishing PRS domain events.

        Publishes to RabbitMQ at $AMQP_URL in namespace $PRS_NAMESPACE, as the PRS services
        would, and prints the ids as JSON on stdout.
        """
        # Imported on use: it loads the message schemas and the AMQP client, which the
        # gateway commands do not need.
        from prs_cli import seed_demo as demo

        output = Output(json_mode=True)
        try:
            ids = demo.run(prefix=prefix, snapshot_version=snapshot_version, dry_run=dry_run)
        except UsageError as exc:
            usage_error(ctx, exc)
        except CliError as exc:
            output.error(exc.message)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            output.error("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        output.json(ids)

    # The seed's own spelling, so its examples run with only `python manage.py` replaced.
    app.command("manage_background_tasks", hidden=True)(manage_background_tasks)
    tasks_cmd.register(app, make_client)
    dlq_cmd.register(app, make_client)
    app.add_typer(schedules_app(make_client), name="schedules")
    return app


app = build_app()
