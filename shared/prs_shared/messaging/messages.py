"""Payload models of the platform's own messages: diagnostics, task lifecycle, heartbeats.

Business messages (deals, files, notifications) live beside these in their own modules and are
registered in the same catalog.
"""

from __future__ import annotations

import enum
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from prs_shared.messaging import catalog
from prs_shared.messaging.common import (
    Attempt,
    BigCount,
    BoundedStr,
    Count,
    DurationMs,
    LargeJsonObject,
    LongStr,
)
from prs_shared.messaging.envelope import CONTROL_PRIORITY, Envelope, Priority


class Message(BaseModel):
    """Base of every payload: immutable, unknown fields refused, every field bounded."""

    # Bounded with the types of prs_shared.messaging.common, so that a message no consumer could
    # store is refused at validation (dead-lettered as a schema mismatch), not in a handler.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


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
    task_type: BoundedStr
    status: TaskStatus
    queue: BoundedStr
    service: str = Field(max_length=100)
    worker: BoundedStr
    attempt: Attempt = Field(description="1 for the first try.")
    at: AwareDatetime
    duration_ms: DurationMs | None = None
    result: LargeJsonObject | None = None
    error: LongStr | None = None
    retry_at: AwareDatetime | None = None
    queued_at: AwareDatetime | None = Field(
        default=None, description="When the command was sent (its envelope's occurred_at)."
    )
    priority: Priority | None = Field(default=None, description="The command's priority.")


class Heartbeat(Message):
    """A service instance saying it is alive, and what it is doing."""

    service: str = Field(max_length=100)
    worker: BoundedStr
    started_at: AwareDatetime
    queues: list[BoundedStr] = Field(max_length=100)
    in_flight: Count
    processed: BigCount


PING = catalog.command(
    "diagnostic.ping",
    Ping,
    "system",
    "Diagnostic task every service handles; the answer names the service and worker.",
    time_limit=(10, 15),
)

LIFECYCLE_STATUS_TYPES: dict[TaskStatus, str] = {
    TaskStatus.STARTED: "task.started",
    TaskStatus.RETRYING: "task.retrying",
    TaskStatus.SUCCEEDED: "task.succeeded",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.DEAD_LETTERED: "task.dead_lettered",
    TaskStatus.CANCELLED: "task.cancelled",
}
LIFECYCLE_EVENTS: tuple[catalog.MessageSpec[TaskLifecycle], ...] = tuple(
    catalog.event(type_, TaskLifecycle, f"A task attempt reached {status.value}.")
    for status, type_ in LIFECYCLE_STATUS_TYPES.items()
)

HEARTBEAT = catalog.event("service.heartbeat", Heartbeat, "A service instance is alive.")


class TaskOutcome(TaskLifecycle):
    """One task's outcome within a batch's announcement, with what its own event's envelope
    would have carried."""

    event_id: UUID = Field(description="Plays the message id of the task's own event.")
    correlation_id: UUID
    causation_id: UUID = Field(description="The id of the command it concludes.")
    organization_id: str | None = Field(default=None, max_length=200)


class TaskOutcomes(Message):
    """The outcomes (SUCCEEDED or CANCELLED) of the tasks of one committed batch."""

    outcomes: list[TaskOutcome] = Field(min_length=1, max_length=10_000)


TASK_OUTCOMES = catalog.event(
    "task.outcomes",
    TaskOutcomes,
    "The tasks of one batch a worker committed reached SUCCEEDED or CANCELLED: one message for "
    "the batch instead of a task.succeeded (or task.cancelled) per task. A batch of one is "
    "announced as the task's own event.",
)

_LIFECYCLE_FIELDS = frozenset(TaskLifecycle.model_fields)


def expand_outcomes(
    envelope: Envelope, outcomes: TaskOutcomes
) -> list[tuple[Envelope, TaskLifecycle]]:
    """Each outcome of a ``task.outcomes`` message as the task's own lifecycle event would have
    been: its envelope (with an empty ``payload``: the lifecycle is the pair's second half) and
    its lifecycle. Built without validating again: the batch was validated as it was decoded.
    """
    expanded: list[tuple[Envelope, TaskLifecycle]] = []
    for outcome in outcomes.outcomes:
        lifecycle = TaskLifecycle.model_construct(
            **{name: getattr(outcome, name) for name in _LIFECYCLE_FIELDS}
        )
        own = Envelope.model_construct(
            id=outcome.event_id,
            type=LIFECYCLE_STATUS_TYPES[outcome.status],
            version=envelope.version,
            occurred_at=outcome.at,
            correlation_id=outcome.correlation_id,
            causation_id=outcome.causation_id,
            organization_id=outcome.organization_id,
            task_id=outcome.task_id,
            priority=outcome.priority or Priority.MEDIUM,
            payload={},
        )
        expanded.append((own, lifecycle))
    return expanded


class CancelTask(Message):
    """Skip the command with this id if it has not run yet (a control command).

    It travels on the task's own queue at the control priority, above every task priority, so a
    worker that starts after the cancellation meets it before the command it cancels.
    """

    task_id: UUID
    message_id: UUID
    requested_by: BoundedStr | None = None


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
