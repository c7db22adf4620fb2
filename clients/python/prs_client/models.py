"""The gateway's request and response bodies, as the client sends and reads them.

They mirror the gateway's OpenAPI document (field names, types, required fields, enums); a test
compares them with the document so they cannot drift. Responses ignore fields a newer gateway
adds, so an upgrade of the platform never breaks a caller.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class Priority(enum.StrEnum):
    """Task priority; a high task overtakes a backlog of low ones."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class TaskStatus(enum.StrEnum):
    """Where a task is in its lifecycle; the last five are final."""

    QUEUED = "QUEUED"
    STARTED = "STARTED"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    DEAD_LETTERED = "DEAD_LETTERED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"

    @property
    def terminal(self) -> bool:
        """True once the task will not change any more."""
        return self not in {TaskStatus.QUEUED, TaskStatus.STARTED, TaskStatus.RETRYING}


class WorkflowAction(enum.StrEnum):
    VERIFY_DEAL = "verify_deal"
    CALCULATE_COMMISSION = "calculate_commission"
    UPDATE_PAYMENT_STATUS = "update_payment_status"
    GENERATE_INVOICE = "generate_invoice"


class NotificationType(enum.StrEnum):
    PASSWORD_RESET = "password_reset"
    PASSWORD_CREATED = "password_created"
    PASSWORD_EXPIRY_WARNING = "password_expiry_warning"
    VERIFICATION_APPROVED = "verification_approved"
    VERIFICATION_REJECTED = "verification_rejected"
    PAYMENT_RECEIVED = "payment_received"
    DEAL_OVERDUE = "deal_overdue"
    VERIFICATION_REMINDER = "verification_reminder"
    AUDIT_REPORT_READY = "audit_report_ready"
    SYSTEM_UNHEALTHY = "system_unhealthy"
    SYSTEM_RECOVERED = "system_recovered"


class UserRole(enum.StrEnum):
    ADMIN = "admin"
    VERIFIER = "verifier"
    SALESPERSON = "salesperson"
    FINANCE = "finance"


FileType = Literal["profile_picture", "deal_attachment"]
ReportType = Literal["comprehensive", "deals", "payments", "users", "security"]
RecipientType = Literal["user", "role", "email"]
SERVICES = ("gateway", "deal-workflow", "file-processor", "notifier", "scheduler")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- requests -------------------------------------------------------------------------------------


class QueueDealProcessing(_Request):
    """Body of ``POST /api/background-tasks/queue-deal-processing/``."""

    deal_id: str
    workflow_action: WorkflowAction
    priority: Priority = Priority.MEDIUM
    user_id: str | None = None
    organization_id: str | None = None


class QueueFileProcessingJson(_Request):
    """JSON body of ``POST /api/background-tasks/queue-file-processing/`` (a file already there)."""

    file_type: FileType
    file_path: str
    original_filename: str
    priority: Priority = Priority.MEDIUM
    user_id: str | None = None
    deal_id: str | None = None
    organization_id: str | None = None


class SendNotificationRequest(_Request):
    """Body of ``POST /api/background-tasks/send-notification/``."""

    notification_type: NotificationType
    recipient_type: RecipientType = "user"
    user_id: str | None = None
    role: UserRole | None = None
    email: EmailStr | None = None
    deal_id: str | None = None
    additional_data: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = Priority.MEDIUM
    organization_id: str | None = None


class GenerateAuditReportRequest(_Request):
    """Body of ``POST /api/automated-processes/generate-audit-report/``."""

    report_type: ReportType = "comprehensive"
    days: int = 30
    organization_id: str | None = None
    priority: Priority = Priority.LOW


class TriggerProcessRequest(_Request):
    """Body of the ``trigger-*`` process endpoints."""

    organization_id: str | None = None


WebhookEventType = Literal[
    "deal.verified",
    "deal.rejected",
    "deal.payment_status_changed",
    "deal.overdue",
    "deal.verification_reminder_due",
    "report.audit.generated",
]


class RegisterWebhookRequest(_Request):
    """Body of ``POST /api/webhooks/``: an organization's HTTPS endpoint for chosen events."""

    url: str
    event_types: list[WebhookEventType]
    secret: str
    active: bool = True
    organization_id: str | None = None


class DiagnosticRequest(_Request):
    """Body of ``POST /api/background-tasks/queue-diagnostic/``."""

    services: list[str] = Field(default_factory=lambda: list(SERVICES))
    note: str | None = None


# --- responses ------------------------------------------------------------------------------------


class QueuedResponse(_Response):
    """A task the gateway accepted: durable and on its way."""

    task_id: UUID
    status: TaskStatus
    queue: str
    status_url: str


class TaskStatusResponse(_Response):
    """Status, result or error, attempts and timings of one task."""

    task_id: UUID
    task_type: str
    status: TaskStatus
    successful: bool | None
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    queue: str
    priority: str
    organization_id: str | None
    queued_by: str | None
    correlation_id: str | None
    service: str | None
    worker: str | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    retry_at: datetime | None
    duration_ms: float | None
    expires_at: datetime | None
    stalled_at: datetime | None = None
    """When task monitoring found the task stuck; None once it moves on."""
    stalled_reason: str | None = None
    """no_consumer, time_limit or dead_worker."""
    stalled_requeues: int = 0


class TaskPage(_Response):
    items: list[TaskStatusResponse]
    total: int
    limit: int
    offset: int


class CancelResponse(_Response):
    task_id: UUID
    status: TaskStatus
    cancel_requested: bool


class DiagnosticResponse(_Response):
    tasks: dict[str, QueuedResponse]


class ReportSummary(_Response):
    report_id: str
    organization_id: str | None
    report_type: str
    days: int
    formats: list[str]
    generated_at: datetime
    download_urls: dict[str, str]


class ProcessStatus(_Response):
    process_name: str
    task_type: str
    schedule: str
    cron: str
    enabled: bool | None
    next_run: datetime | None
    status: str
    last_run: datetime | None
    last_finished: datetime | None
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    counts: dict[str, int]
    success_count: int
    failure_count: int
    average_duration_ms: float | None
    last_duration_ms: float | None


class ScheduleView(_Response):
    name: str
    cron: str
    schedule: str
    enabled: bool | None
    next_run: datetime | None
    description: str
    message_type: str
    message_kind: str
    announced: bool
    revision: int | None
    changed_at: datetime | None
    changed_by: str | None
    last_run_at: datetime | None
    last_run_source: str | None
    last_run_task_id: str | None


ProcessName = Literal[
    "deal_verification_reminders",
    "commission_calculation",
    "audit_report_generation",
    "overdue_detection",
]


class Download(_Response):
    """A file the platform produced (an invoice PDF, a report)."""

    content: bytes
    media_type: str
    filename: str | None
