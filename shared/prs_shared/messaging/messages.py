"""Payload models of the platform's own messages: diagnostics, task lifecycle, heartbeats.

Business messages (deals, files, notifications) live beside these in their own modules and are
registered in the same catalog.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from prs_shared.messaging import catalog
from prs_shared.messaging.envelope import CONTROL_PRIORITY


class Message(BaseModel):
    """Base of every payload: immutable, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Ping(Message):
    """Diagnostic task: the service that handles it answers with its name and worker."""

    note: str | None = Field(default=None, max_length=500, description="Echoed in the result.")


class TaskStatus(enum.StrEnum):
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
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.DEAD_LETTERED,
        TaskStatus.CANCELLED,
        TaskStatus.EXPIRED,
    }
)


class TaskLifecycle(Message):
    """What happened to one attempt of a task, as told by the worker that ran it."""

    task_id: UUID
    task_type: str
    status: TaskStatus
    queue: str
    service: str
    worker: str
    attempt: int = Field(ge=1, description="1 for the first try.")
    at: datetime
    duration_ms: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    retry_at: datetime | None = None


class Heartbeat(Message):
    """A service instance saying it is alive, and what it is doing."""

    service: str
    worker: str
    started_at: datetime
    queues: list[str]
    in_flight: int
    processed: int


PING = catalog.command(
    "diagnostic.ping",
    Ping,
    "system",
    "Diagnostic task every service handles; the answer names the service and worker.",
)

LIFECYCLE_STATUS_TYPES: dict[TaskStatus, str] = {
    TaskStatus.STARTED: "task.started",
    TaskStatus.RETRYING: "task.retrying",
    TaskStatus.SUCCEEDED: "task.succeeded",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.DEAD_LETTERED: "task.dead_lettered",
    TaskStatus.CANCELLED: "task.cancelled",
}
for _status, _type in LIFECYCLE_STATUS_TYPES.items():
    catalog.event(_type, TaskLifecycle, f"A task attempt reached {_status.value}.")

HEARTBEAT = catalog.event("service.heartbeat", Heartbeat, "A service instance is alive.")


class CancelTask(Message):
    """Skip the command with this id if it has not run yet (a control command).

    It travels on the task's own queue at the control priority, above every task priority, so a
    worker that starts after the cancellation meets it before the command it cancels.
    """

    task_id: UUID
    message_id: UUID
    requested_by: str | None = None


CANCEL_TASK = catalog.register(
    catalog.MessageSpec(
        "task.cancel",
        "command",
        CancelTask,
        "Cancel a queued task: its command is marked dealt with in the receiving service's inbox.",
        queue="system",
        amqp_priority=CONTROL_PRIORITY,
    )
)
