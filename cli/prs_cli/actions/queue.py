"""``--action=queue --task-type=T``: queue one task through the gateway's queuing endpoints.

Each task type is one endpoint and the flags it reads. A missing required flag is a usage error
naming it, except with ``--dry-run``, which shows the request with a placeholder in its place (so
the seed's ``--action=queue --task-type=deal_processing --dry-run`` works as written).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any

from rich.console import Console, RenderableType
from rich.text import Text

from prs_cli.actions.context import SERVICES, ActionContext, ManageOptions
from prs_cli.actions.test import poll
from prs_cli.client import QueuedTask, TaskState, diagnostic_body, diagnostic_path
from prs_cli.errors import MissingOption, UsageError
from prs_cli.output import styled_status
from prs_cli.records import Cell, render_records

TASKS = "/api/background-tasks"
PROCESSES = "/api/automated-processes"
DEFAULT_WORKFLOW_ACTION = "verify_deal"
DEFAULT_REPORT_TYPE = "comprehensive"
DEFAULT_REPORT_DAYS = 30
DEFAULT_FILE_TYPE = "profile_picture"


@dataclass
class Plan:
    """The request one ``--action=queue`` would send, and the required flags it still lacks."""

    path: str
    body: dict[str, Any] | None
    summary: str
    missing: list[str] = field(default_factory=list)

    def need(self, flag: str, value: str | None) -> str:
        """``value``, or a placeholder (and ``flag`` noted as missing) when it was not given."""
        if value:
            return value
        self.missing.append(flag)
        return f"<{flag.removeprefix('--')}>"


@dataclass(frozen=True)
class TaskType:
    """One ``--task-type``: which service does the work, the flags it reads, how to ask for it."""

    name: str
    service: str
    task_type: str
    """The gateway's name for tasks of this kind (what ``--action=status`` filters on)."""
    flags: tuple[str, ...]
    takes_priority: bool
    plan: Callable[[ManageOptions], Plan]


def _deal_processing(o: ManageOptions) -> Plan:
    action = _choice("--workflow-action", o.workflow_action or DEFAULT_WORKFLOW_ACTION)
    plan = Plan(f"{TASKS}/queue-deal-processing/", None, "")
    deal_id = plan.need("--deal-id", o.deal_id)
    plan.body = _compact(
        deal_id=deal_id,
        workflow_action=action,
        priority=_priority(o),
        user_id=o.user_id,
        organization_id=o.organization,
    )
    plan.summary = f"{action} on deal {deal_id}"
    return plan


def _file_processing(o: ManageOptions) -> Plan:
    file_type = _choice("--file-type", o.file_type or DEFAULT_FILE_TYPE)
    plan = Plan(f"{TASKS}/queue-file-processing/", None, "")
    path = plan.need("--file-path", o.file_path)
    plan.body = _compact(
        file_type=file_type,
        file_path=path,
        # The gateway keeps the name a person would recognise; the path's last part is it.
        original_filename=PurePosixPath(path).name or path,
        priority=_priority(o),
        user_id=o.user_id,
        deal_id=o.deal_id,
        organization_id=o.organization,
    )
    plan.summary = f"{file_type} {path}"
    return plan


def _notification(o: ManageOptions) -> Plan:
    plan = Plan(f"{TASKS}/send-notification/", None, "")
    kind = (
        _choice("--notification-type", o.notification_type)
        if o.notification_type
        else plan.need("--notification-type", None)
    )
    user_id = plan.need("--user-id", o.user_id)
    plan.body = _compact(
        notification_type=kind,
        recipient_type="user",
        user_id=user_id,
        deal_id=o.deal_id,
        priority=_priority(o),
        organization_id=o.organization,
    )
    plan.summary = f"{kind} to user {user_id}"
    return plan


def _trigger(endpoint: str, what: str) -> Callable[[ManageOptions], Plan]:
    def plan(o: ManageOptions) -> Plan:
        # The trigger endpoints take nothing but an optional organization.
        body = _compact(organization_id=o.organization) or None
        return Plan(f"{PROCESSES}/{endpoint}/", body, what)

    return plan


def _audit_report(o: ManageOptions) -> Plan:
    report_type = _choice("--report-type", o.report_type or DEFAULT_REPORT_TYPE)
    days = o.days if o.days is not None else DEFAULT_REPORT_DAYS
    body = _compact(
        report_type=report_type, days=days, priority=_priority(o), organization_id=o.organization
    )
    return Plan(f"{PROCESSES}/generate-audit-report/", body, f"{report_type} report, {days} days")


def _diagnostic(o: ManageOptions) -> Plan:
    services = list(o.services or SERVICES)
    # As with --action=test, the organization travels as the diagnostic's note.
    return Plan(
        diagnostic_path(),
        diagnostic_body(services, o.organization),
        f"diagnostic to {', '.join(services)}",
    )


TASK_TYPES: dict[str, TaskType] = {
    t.name: t
    for t in (
        TaskType(
            "deal_processing",
            "deal-workflow",
            "deal.process_workflow",
            ("--deal-id", "--workflow-action", "--user-id"),
            True,
            _deal_processing,
        ),
        TaskType(
            "file_processing",
            "file-processor",
            "file.process",
            ("--file-path", "--file-type", "--user-id", "--deal-id"),
            True,
            _file_processing,
        ),
        TaskType(
            "notification",
            "notifier",
            "notification.send",
            ("--notification-type", "--user-id", "--deal-id"),
            True,
            _notification,
        ),
        TaskType(
            "verification_reminders",
            "deal-workflow",
            "process.verification_reminders.run",
            (),
            False,
            _trigger("trigger-verification-reminders", "verification reminders"),
        ),
        TaskType(
            "commission_calculation",
            "deal-workflow",
            "process.commission_calculation.run",
            (),
            False,
            _trigger("trigger-commission-calculation", "commission calculation"),
        ),
        TaskType(
            "overdue_detection",
            "deal-workflow",
            "process.overdue_detection.run",
            (),
            False,
            _trigger("trigger-overdue-detection", "overdue detection"),
        ),
        TaskType(
            "audit_report",
            "deal-workflow",
            "report.audit.generate",
            ("--report-type", "--days"),
            True,
            _audit_report,
        ),
        TaskType(
            "diagnostic",
            "",
            "diagnostic.ping",
            ("--service",),
            False,
            _diagnostic,
        ),
    )
}


def run(ctx: ActionContext) -> int:
    """Queue the task (or show what would be queued); with ``--wait``, follow it to the end."""
    spec = task_type(ctx.options.task_type)
    if spec.name != "diagnostic" and ctx.options.organization:
        ctx.options = replace(ctx.options, organization=organization_id(ctx.options.organization))
    opts = ctx.options
    if spec.name == "deal_processing" and not opts.deal_id:
        # Imported on use: it loads the demo data, which one deal does not need.
        from prs_cli.actions import queue_deals

        return queue_deals.run(ctx, spec)
    plan = spec.plan(opts)
    for flag in ignored_flags(spec, opts):
        ctx.output.note(f"{flag} is ignored by --task-type={spec.name}")
    if opts.dry_run:
        _show_plan(ctx, spec, plan)
        return 0
    if plan.missing:
        flag = plan.missing[0]
        raise MissingOption(f"--task-type={spec.name} needs it", param=flag)

    client = ctx.client()
    if spec.name == "diagnostic":
        queued = client.queue_diagnostic(list(opts.services or SERVICES), opts.organization)
    else:
        queued = [client.queue(plan.path, plan.body, service=spec.service)]
    if not opts.wait:
        _show_queued(ctx, spec, plan, queued)
        return 0

    states = poll(client, queued, timeout=opts.timeout, interval=opts.poll_interval)
    finals = [(task, states.get(task.service)) for task in queued]
    failed = [(t, s) for t, s in finals if s is None or s.status != "SUCCEEDED"]
    if ctx.output.json_mode:
        ctx.output.json(
            {
                "task_type": spec.name,
                "summary": plan.summary,
                "ok": not failed,
                "tasks": [_task_json(t, s) for t, s in finals],
            }
        )
    else:
        ctx.output.line(f"{spec.name}: {plan.summary}")
        ctx.output.render(render_finished(ctx.output.out, finals))
    for task, state in failed:
        ctx.output.error(f"task {task.task_id} {_failure(state, opts.timeout)}")
    return 1 if failed else 0


def task_type(name: str | None) -> TaskType:
    """The ``--task-type`` of a queue action; a usage error listing the choices otherwise."""
    choices = ", ".join(TASK_TYPES)
    if not name:
        raise UsageError(
            f"--action=queue needs --task-type, one of: {choices}", param="--task-type"
        )
    spec = TASK_TYPES.get(name.strip().lower().replace("-", "_"))
    if spec is None:
        raise UsageError(f"unknown task type {name!r}; one of: {choices}", param="--task-type")
    return spec


def organization_id(value: str) -> str:
    """``--organization`` as an id: a demo organization's name (or short name) becomes its id;
    anything else is taken as an id already (the gateway knows organizations only by id)."""
    from prs_cli.actions.queue_deals import demo_organizations

    wanted = value.strip().casefold()
    for org_id, name, short in demo_organizations():
        if wanted in (name.casefold(), short.casefold(), org_id.casefold()):
            return org_id
    return value.strip()


def ignored_flags(spec: TaskType, o: ManageOptions) -> list[str]:
    """Flags that were given but that this task type does not read."""
    given = {
        "--deal-id": o.deal_id,
        "--workflow-action": o.workflow_action,
        "--notification-type": o.notification_type,
        "--user-id": o.user_id,
        "--report-type": o.report_type,
        "--days": o.days,
        "--file-path": o.file_path,
        "--file-type": o.file_type,
        "--service": o.services or None,
        "--priority": o.priority,
        "--task-id": o.task_id,
    }
    reads = set(spec.flags) | ({"--priority"} if spec.takes_priority else set())
    return [flag for flag, value in given.items() if value is not None and flag not in reads]


# The values the shared message schemas accept (prs_shared.messaging.deals.WorkflowAction and
# ReportType, prs_shared.messaging.notifications.NotificationType). Listed here rather than
# imported because importing the schemas loads pydantic, which would add half a second to every
# `prs` run; a unit test keeps the lists equal to the schemas.
CHOICES: dict[str, tuple[str, ...]] = {
    "--workflow-action": (
        "verify_deal",
        "calculate_commission",
        "update_payment_status",
        "generate_invoice",
    ),
    "--notification-type": (
        "password_reset",
        "password_created",
        "password_expiry_warning",
        "verification_approved",
        "verification_rejected",
        "payment_received",
        "deal_overdue",
        "verification_reminder",
        "audit_report_ready",
        "system_unhealthy",
        "system_recovered",
    ),
    "--report-type": ("comprehensive", "deals", "payments", "users", "security"),
    "--file-type": ("profile_picture", "deal_attachment"),
}


def _choice(flag: str, value: str) -> str:
    allowed = CHOICES[flag]
    normalized = value.strip().lower().replace("-", "_")
    if normalized not in allowed:
        raise UsageError(f"{value!r} is not one of: {', '.join(allowed)}", param=flag)
    return normalized


def _priority(o: ManageOptions) -> str | None:
    return o.priority.value if o.priority is not None else None


def _compact(**fields: Any) -> dict[str, Any]:
    # Flags not given are left out, so the gateway applies its own defaults.
    return {k: v for k, v in fields.items() if v is not None}


def _show_plan(ctx: ActionContext, spec: TaskType, plan: Plan) -> None:
    url = ctx.config.gateway_url + plan.path
    if ctx.output.json_mode:
        ctx.output.json(
            {
                "dry_run": True,
                "task_type": spec.name,
                "summary": plan.summary,
                "requests": [{"method": "POST", "url": url, "body": plan.body}],
                "missing": plan.missing,
            }
        )
    else:
        ctx.output.line(f"dry run: would queue {spec.name} ({plan.summary})")
        ctx.output.line(f"  POST {url}")
        ctx.output.line(f"  body: {json.dumps(plan.body)}")
        ctx.output.line("nothing was sent")
    for flag in plan.missing:
        ctx.output.note(f"{flag} is required to queue it for real")


def _show_queued(
    ctx: ActionContext, spec: TaskType, plan: Plan, queued: Sequence[QueuedTask]
) -> None:
    if ctx.output.json_mode:
        ctx.output.json(
            {
                "task_type": spec.name,
                "summary": plan.summary,
                "tasks": [_task_json(t, None) for t in queued],
            }
        )
        return
    ctx.output.line(f"queued {spec.name}: {plan.summary}")
    rows: list[list[Cell]] = [
        [t.task_id, t.service, styled_status(t.status), t.queue] for t in queued
    ]
    columns = ("task id", "service", "status", "queue")
    ctx.output.render(render_records(ctx.output.out, "queued", columns, rows))
    for t in queued:
        ctx.output.line(f"status: {t.status_url}")


def render_finished(
    console: Console, finals: Sequence[tuple[QueuedTask, TaskState | None]]
) -> RenderableType:
    """One row per task with where it ended and its result or error."""
    rows: list[list[Cell]] = []
    for task, state in finals:
        if state is None:
            rows.append([task.task_id, task.service, styled_status(task.status), "-", "-"])
            continue
        error = state.get("error")
        detail = (
            Text(str(error), style="red")
            if error
            else Text(_brief(state.get("result")) or "-", style="dim")
        )
        rows.append(
            [
                task.task_id,
                task.service,
                styled_status(state.status),
                str(state.get("attempts") or "-"),
                detail,
            ]
        )
    columns = ("task id", "service", "status", "attempts", "result / error")
    return render_records(console, "finished", columns, rows, right=(3,))


def _task_json(task: QueuedTask, state: TaskState | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "service": task.service,
        "task_id": task.task_id,
        "status": task.status if state is None else state.status,
        "queue": task.queue,
        "status_url": task.status_url,
    }
    if state is not None:
        data["state"] = state.raw
    return data


def _failure(state: TaskState | None, timeout: float) -> str:
    if state is None:
        return "has no status"
    if not state.terminal:
        return f"still {state.status} after {timeout:g}s"
    error = state.get("error")
    return f"ended {state.status}" + (f": {error}" if error else "")


def _brief(result: Any, limit: int = 160) -> str:
    if result is None:
        return ""
    text = json.dumps(result, default=str, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"
