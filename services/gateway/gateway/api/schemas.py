"""Request and response bodies of the gateway's task endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from prs_shared.messaging.messages import TaskStatus

SERVICES = ("gateway", "deal-workflow", "file-processor", "notifier", "scheduler")
# Each service answers the diagnostic task on the first queue it owns.
DIAGNOSTIC_QUEUES = {
    "gateway": "monitoring",
    "deal-workflow": "workflow",
    "file-processor": "file_processing",
    "notifier": "auth",
    "scheduler": "system",
}


class QueuedResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task_id": "6f1c1c2e-8a9e-4d5b-9f6e-0c8a3f1d2b7a",
                    "status": "QUEUED",
                    "queue": "workflow",
                    "status_url": "http://127.0.0.1:8000/api/background-tasks/6f1c1c2e-8a9e-4d5b-9f6e-0c8a3f1d2b7a/status/",
                }
            ]
        }
    )

    task_id: UUID
    status: TaskStatus = Field(description="QUEUED: the task is durable and on its way.")
    queue: str
    status_url: str


class TaskStatusResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "task_id": "6f1c1c2e-8a9e-4d5b-9f6e-0c8a3f1d2b7a",
                "task_type": "deal.workflow.requested",
                "status": "SUCCEEDED",
                "successful": True,
                "result": {"verified": True},
                "error": None,
                "attempts": 1,
                "queue": "workflow",
                "priority": "high",
            }
        }
    )

    task_id: UUID
    task_type: str
    status: TaskStatus
    successful: bool | None = Field(
        description="True when it SUCCEEDED, false when it ended otherwise, null while pending; "
        "kept once the status reads EXPIRED (the result is dropped, the outcome stays)."
    )
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
    expires_at: datetime | None = Field(description="When the result stops being kept.")
    stalled_at: datetime | None = Field(
        default=None,
        description="When task monitoring found the task stuck; null once it moves on (ADR 0008).",
    )
    stalled_reason: str | None = Field(
        default=None, description="Why it is stuck: no_consumer, time_limit or dead_worker."
    )
    stalled_requeues: int = Field(
        default=0, description="How often task monitoring requeued it (its worker had died)."
    )


class TaskEventResponse(BaseModel):
    """One step of a task's life."""

    status: TaskStatus
    at: datetime
    attempt: int = Field(description="The attempt the step belongs to; 0 while queued.")
    error: str | None
    worker: str | None
    retry_at: datetime | None = Field(description="For RETRYING: when the next attempt is due.")
    detail: dict[str, Any] = Field(
        description="What else the step tells: service, queue, who queued or retried it, duration."
    )


class TaskEventsResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "task_id": "6f1c1c2e-8a9e-4d5b-9f6e-0c8a3f1d2b7a",
                "events": [
                    {
                        "status": "QUEUED",
                        "at": "2026-12-06T10:00:00Z",
                        "attempt": 0,
                        "error": None,
                        "worker": None,
                        "retry_at": None,
                        "detail": {"queue": "workflow", "by": "ops"},
                    },
                    {
                        "status": "RETRYING",
                        "at": "2026-12-06T10:00:01Z",
                        "attempt": 1,
                        "error": "TimeoutError: smtp",
                        "worker": "host:4242",
                        "retry_at": "2026-12-06T10:00:03Z",
                        "detail": {"service": "notifier", "queue": "auth"},
                    },
                ],
            }
        }
    )

    task_id: UUID
    events: list[TaskEventResponse] = Field(description="Oldest first.")


class DiagnosticRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    services: list[str] = Field(
        default_factory=lambda: list(SERVICES),
        description="Services to ping; all five by default.",
        examples=[["gateway", "deal-workflow"]],
    )
    note: str | None = Field(default=None, max_length=500)


class DiagnosticResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tasks": {
                        "deal-workflow": {
                            "task_id": "6f1c1c2e-8a9e-4d5b-9f6e-0c8a3f1d2b7a",
                            "status": "QUEUED",
                            "queue": "workflow",
                            "status_url": "http://127.0.0.1:8000/api/background-tasks/6f1c1c2e-8a9e-4d5b-9f6e-0c8a3f1d2b7a/status/",
                        }
                    }
                }
            ]
        }
    )

    tasks: dict[str, QueuedResponse]


class TaskPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [], "total": 0, "limit": 50, "offset": 0}]}
    )

    items: list[TaskStatusResponse]
    total: int = Field(description="Tasks matching the filters.")
    limit: int
    offset: int


class CancelResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task_id": "6f1c1c2e-8a9e-4d5b-9f6e-0c8a3f1d2b7a",
                    "status": "QUEUED",
                    "cancel_requested": True,
                }
            ]
        }
    )

    task_id: UUID
    status: TaskStatus
    cancel_requested: bool = Field(
        description="True when the command was still waiting: the worker that receives it will "
        "skip it and record CANCELLED. A task already running finishes."
    )
