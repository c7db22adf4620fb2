"""Every gateway endpoint as a :class:`Call`: what to send and how to read the answer.

The sync :class:`~prs_client.Client` and the :class:`~prs_client.AsyncClient` expose each builder
here as a method of the same name and signature, so both clients speak exactly the same API.
"""

from __future__ import annotations

import mimetypes
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, TypeAdapter

from prs_client.models import (
    CancelResponse,
    DiagnosticRequest,
    DiagnosticResponse,
    Download,
    FileType,
    GenerateAuditReportRequest,
    NotificationType,
    Priority,
    ProcessStatus,
    QueueDealProcessing,
    QueuedResponse,
    QueueFileProcessingJson,
    RecipientType,
    RegisterWebhookRequest,
    ReportSummary,
    ReportType,
    ScheduleView,
    SendNotificationRequest,
    TaskPage,
    TaskStatus,
    TaskStatusResponse,
    TriggerProcessRequest,
    UserRole,
    WebhookEventType,
    WorkflowAction,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

TASKS = "/api/background-tasks"
PROCESSES = "/api/automated-processes"
IDEMPOTENCY_HEADER = "Idempotency-Key"

Trigger = Literal["verification_reminders", "commission_calculation", "overdue_detection"]
TaskRef = UUID | str


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request to the gateway and the decoder of its successful answer."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    json: Any = None
    params: dict[str, Any] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    data: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    also_ok: frozenset[int] = frozenset()
    """Error statuses whose body is still the answer (and which are not retried)."""


def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate_json(response.content)


def _models(model: type[M]) -> Callable[[httpx.Response], list[M]]:
    adapter = TypeAdapter(list[model])  # type: ignore[valid-type]
    return lambda response: list(adapter.validate_json(response.content))


def _one_of(model: type[M]) -> Callable[[httpx.Response], list[M]]:
    return lambda response: [model.model_validate_json(response.content)]


def _json(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body


_FILENAME = re.compile(r'filename="?([^";]+)"?')


def _download(response: httpx.Response) -> Download:
    match = _FILENAME.search(response.headers.get("content-disposition", ""))
    return Download(
        content=response.content,
        media_type=response.headers.get("content-type", "application/octet-stream").split(";")[0],
        filename=match.group(1) if match else None,
    )


def _queue(path: str, body: BaseModel | None, idempotency_key: str | None) -> Call[QueuedResponse]:
    """A queuing call: its ``Idempotency-Key`` (made here unless given) is kept across retries."""
    return Call(
        "POST",
        path,
        _model(QueuedResponse),
        json=body.model_dump(mode="json", exclude_none=True) if body is not None else None,
        headers={IDEMPOTENCY_HEADER: idempotency_key or str(uuid.uuid4())},
    )


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, datetime) else str(v)
        for k, v in params.items()
        if v is not None
    }


# --- queuing --------------------------------------------------------------------------------------


def queue_deal_processing(
    deal_id: str,
    workflow_action: WorkflowAction | str,
    *,
    priority: Priority | str = Priority.MEDIUM,
    user_id: str | None = None,
    organization_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[QueuedResponse]:
    """Queue a workflow action (verify, commission, payment status, invoice) on a deal."""
    body = QueueDealProcessing(
        deal_id=deal_id,
        workflow_action=WorkflowAction(workflow_action),
        priority=Priority(priority),
        user_id=user_id,
        organization_id=organization_id,
    )
    return _queue(f"{TASKS}/queue-deal-processing/", body, idempotency_key)


def queue_file_processing(
    file: Path | str | bytes,
    file_type: FileType,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    priority: Priority | str = Priority.MEDIUM,
    user_id: str | None = None,
    deal_id: str | None = None,
    organization_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[QueuedResponse]:
    """Upload a profile picture or deal attachment (a path, or bytes) and queue its processing."""
    if isinstance(file, bytes):
        content, name = file, filename or "upload"
    else:
        path = Path(file)
        content, name = path.read_bytes(), filename or path.name
    media = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    form = {"file_type": file_type, "priority": Priority(priority).value}
    optional = {"user_id": user_id, "deal_id": deal_id, "organization_id": organization_id}
    form.update({k: v for k, v in optional.items() if v is not None})
    return Call(
        "POST",
        f"{TASKS}/queue-file-processing/",
        _model(QueuedResponse),
        files={"file": (name, content, media)},
        data=form,
        headers={IDEMPOTENCY_HEADER: idempotency_key or str(uuid.uuid4())},
    )


def queue_file_processing_from_path(
    file_path: str,
    file_type: FileType,
    original_filename: str,
    *,
    priority: Priority | str = Priority.MEDIUM,
    user_id: str | None = None,
    deal_id: str | None = None,
    organization_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[QueuedResponse]:
    """Queue the processing of a file already in the gateway's upload directory."""
    body = QueueFileProcessingJson(
        file_type=file_type,
        file_path=file_path,
        original_filename=original_filename,
        priority=Priority(priority),
        user_id=user_id,
        deal_id=deal_id,
        organization_id=organization_id,
    )
    return _queue(f"{TASKS}/queue-file-processing/", body, idempotency_key)


def send_notification(
    notification_type: NotificationType | str,
    *,
    recipient_type: RecipientType = "user",
    user_id: str | None = None,
    role: UserRole | str | None = None,
    email: str | None = None,
    deal_id: str | None = None,
    additional_data: dict[str, Any] | None = None,
    priority: Priority | str = Priority.MEDIUM,
    organization_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[QueuedResponse]:
    """Queue an email to a user, an organization's role, or (admin keys) an address."""
    body = SendNotificationRequest(
        notification_type=NotificationType(notification_type),
        recipient_type=recipient_type,
        user_id=user_id,
        role=UserRole(role) if role is not None else None,
        email=email,
        deal_id=deal_id,
        additional_data=additional_data or {},
        priority=Priority(priority),
        organization_id=organization_id,
    )
    return _queue(f"{TASKS}/send-notification/", body, idempotency_key)


def generate_audit_report(
    report_type: ReportType = "comprehensive",
    *,
    days: int = 30,
    organization_id: str | None = None,
    priority: Priority | str = Priority.LOW,
    idempotency_key: str | None = None,
) -> Call[QueuedResponse]:
    """Queue an audit report (JSON, CSV and HTML); wait for it, then ``download`` it."""
    body = GenerateAuditReportRequest(
        report_type=report_type,
        days=days,
        organization_id=organization_id,
        priority=Priority(priority),
    )
    return _queue(f"{PROCESSES}/generate-audit-report/", body, idempotency_key)


def trigger_process(
    process: Trigger,
    *,
    organization_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[QueuedResponse]:
    """Run an automated process now: verification reminders, commissions or overdue detection."""
    body = TriggerProcessRequest(organization_id=organization_id)
    path = f"{PROCESSES}/trigger-{process.replace('_', '-')}/"
    return _queue(path, body, idempotency_key)


def register_webhook(
    url: str,
    event_types: list[WebhookEventType],
    secret: str,
    *,
    active: bool = True,
    organization_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[QueuedResponse]:
    """Register (or update) an organization's HTTPS endpoint for chosen deal events."""
    body = RegisterWebhookRequest(
        url=url,
        event_types=event_types,
        secret=secret,
        active=active,
        organization_id=organization_id,
    )
    return _queue("/api/webhooks/", body, idempotency_key)


def list_webhooks(*, organization_id: str | None = None) -> Call[dict[str, Any]]:
    """Registered webhooks (``items``, ``total``) as the notifier accepted them; no secrets."""
    return Call("GET", "/api/webhooks/", _json, params=_clean({"organization_id": organization_id}))


def queue_diagnostic(
    services: list[str] | None = None, *, note: str | None = None
) -> Call[DiagnosticResponse]:
    """Send the diagnostic task to each named service (all five by default)."""
    body = (
        DiagnosticRequest(note=note)
        if services is None
        else DiagnosticRequest(services=services, note=note)
    )
    return Call(
        "POST",
        f"{TASKS}/queue-diagnostic/",
        _model(DiagnosticResponse),
        json=body.model_dump(mode="json", exclude_none=True),
    )


# --- tasks ----------------------------------------------------------------------------------------


def get_status(task_id: TaskRef, *, wait: float = 0) -> Call[TaskStatusResponse]:
    """Status, result or error, attempts and timings of one task; ``NotFound`` if unknown.
    ``wait`` (at most 30 s): the gateway holds the answer until the task has finished."""
    return Call(
        "GET",
        f"{TASKS}/{UUID(str(task_id))}/status/",
        _model(TaskStatusResponse),
        params={"wait": round(wait, 3)} if wait > 0 else None,
    )


def list_tasks(
    *,
    status: TaskStatus | str | None = None,
    task_type: str | None = None,
    queue: str | None = None,
    organization_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Call[TaskPage]:
    """Tasks, newest first, filtered by status, type, queue, organization and time."""
    params = _clean(
        {
            "status": TaskStatus(status).value if status is not None else None,
            "task_type": task_type,
            "queue": queue,
            "organization_id": organization_id,
            "since": since,
            "until": until,
            "limit": limit,
            "offset": offset,
        }
    )
    return Call("GET", f"{TASKS}/", _model(TaskPage), params=params)


def cancel(task_id: TaskRef) -> Call[CancelResponse]:
    """Cancel a task that has not started; ``Conflict`` once it runs or has finished."""
    return Call("POST", f"{TASKS}/{UUID(str(task_id))}/cancel/", _model(CancelResponse))


def retry(task_id: TaskRef) -> Call[QueuedResponse]:
    """Run a failed, dead-lettered or cancelled task again (same task id)."""
    return Call("POST", f"{TASKS}/{UUID(str(task_id))}/retry/", _model(QueuedResponse))


def download(
    task_id: TaskRef, *, format: str | None = None, variant: str | None = None
) -> Call[Download]:
    """The file a finished task produced: an invoice PDF, a report in ``format``, or a processed
    file's ``variant`` (a name of its result's ``variants``, or a size such as ``"256"``)."""
    params = _clean({"format": format, "variant": variant})
    return Call("GET", f"{TASKS}/{UUID(str(task_id))}/download/", _download, params=params)


# --- automated processes --------------------------------------------------------------------------


def list_reports(*, limit: int = 50) -> Call[list[ReportSummary]]:
    """Finished audit reports, newest first."""
    return Call("GET", f"{PROCESSES}/reports/", _models(ReportSummary), params={"limit": limit})


def download_report(
    report_id: str, *, format: Literal["json", "csv", "html"] = "html"
) -> Call[Download]:
    """Download a finished audit report as JSON, CSV or HTML."""
    return Call(
        "GET",
        f"{PROCESSES}/reports/{report_id}/download",
        _download,
        params={"format": format},
    )


def process_status(process_name: str | None = None) -> Call[list[ProcessStatus]]:
    """Last run, outcome counts and timings of each automated process (or the one named)."""
    params = _clean({"process_name": process_name})
    # The gateway answers a named process with one object (as the seed did); the client keeps
    # returning a list either way, so callers need not tell the two cases apart.
    parse = _models(ProcessStatus) if process_name is None else _one_of(ProcessStatus)
    return Call("GET", f"{PROCESSES}/process-status/", parse, params=params)


SCHEDULES = f"{PROCESSES}/schedules"


def list_schedules() -> Call[list[ScheduleView]]:
    """Every scheduled process with its cron expression, enabled flag and latest run (admin)."""
    return Call("GET", f"{SCHEDULES}/", _models(ScheduleView))


def get_schedule(name: str) -> Call[ScheduleView]:
    """One schedule (admin)."""
    return Call("GET", f"{SCHEDULES}/{name}/", _model(ScheduleView))


def change_schedule(
    name: str, *, enabled: bool | None = None, cron: str | None = None
) -> Call[QueuedResponse]:
    """Queue a change of a schedule for the scheduler: on or off, a new cron expression (admin)."""
    body = {k: v for k, v in {"enabled": enabled, "cron": cron}.items() if v is not None}
    return Call("PATCH", f"{SCHEDULES}/{name}/", _model(QueuedResponse), json=body)


def enable_schedule(name: str) -> Call[QueuedResponse]:
    return _queue(f"{SCHEDULES}/{name}/enable/", None, None)


def disable_schedule(name: str) -> Call[QueuedResponse]:
    return _queue(f"{SCHEDULES}/{name}/disable/", None, None)


def run_schedule(name: str) -> Call[QueuedResponse]:
    """Run a scheduled process now through the scheduler (admin)."""
    return _queue(f"{SCHEDULES}/{name}/run/", None, None)


HOUSEKEEPING = "/api/housekeeping"

CleanupJob = Literal["failed_task_cleanup", "system_cleanup"]


def cleanup(*, dry_run: bool = True, jobs: list[CleanupJob] | None = None) -> Call[dict[str, Any]]:
    """The gateway's part of the system cleanup: what it would remove now (rows, bytes, files)
    or, with ``dry_run=False``, remove it (admin, not scoped to an organization)."""
    params: dict[str, Any] = {"dry_run": str(dry_run).lower()}
    if jobs:
        params["job"] = list(jobs)
    return Call("POST", f"{HOUSEKEEPING}/cleanup/", _json, params=params)


def cleanup_plan() -> Call[DiagnosticResponse]:
    """Ask every service what its part of the system cleanup would remove now: one task per
    service, whose result is its plan (admin, not scoped to an organization)."""
    return Call("POST", f"{HOUSEKEEPING}/cleanup-plan/", _model(DiagnosticResponse))


def system_health() -> Call[dict[str, Any]]:
    """Database, broker, service heartbeats, disk and SMTP, as the gateway reports them."""
    # 503 (unhealthy) is an answer here, not a failure: the report says what is wrong.
    return Call("GET", f"{PROCESSES}/system-health/", _json, also_ok=frozenset({503}))
