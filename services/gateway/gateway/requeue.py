"""Queuing a task again under its own task id: an operator's retry, or task monitoring's
requeue of a task whose worker died (ADR 0008).

Both reset the registry row to QUEUED, record the step in the task's history and build the
command; the caller stages it (the API through its outbox, a handler with ``ctx.emit``) in the
same transaction.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import Task
from gateway.task_events import add_events, requeued_event
from prs_shared.messaging.envelope import Envelope, Priority, utcnow
from prs_shared.messaging.messages import TaskStatus


def command_of(task: Task, message_id: UUID | None = None) -> Envelope:
    """The task's command as the registry knows it; a fresh message id unless one is given."""
    fields: dict[str, Any] = {} if message_id is None else {"id": message_id}
    return Envelope(
        type=task.task_type,
        payload=task.payload or {},
        task_id=UUID(task.task_id),
        priority=Priority(task.priority),
        organization_id=task.organization_id,
        correlation_id=UUID(task.correlation_id) if task.correlation_id else uuid.uuid4(),
        **fields,
    )


async def requeue(
    session: AsyncSession,
    task: Task,
    *,
    how: str,
    by: str | None,
    same_message: bool = False,
    **detail: Any,
) -> Envelope:
    """Reset ``task`` to QUEUED and return its command, for the caller to stage and commit.

    ``same_message`` keeps the id of the command sent last: a consumer whose inbox already holds
    it (the original did run) answers with the stored outcome instead of running it again. A
    retry of a finished task wants the opposite, a new id, or the inbox would skip it.
    """
    reuse = UUID(task.message_id) if same_message and task.message_id else None
    envelope = command_of(task, reuse)
    reset_to_queued(task)
    task.message_id = str(envelope.id)
    await add_events(session, [requeued_event(task, how, by, **detail)])
    return envelope


def reset_to_queued(task: Task) -> None:
    """The row of a task about to run again: QUEUED now, nothing left of the earlier attempts
    but their history. Attempts restart at 0, so the fold takes the new attempt's events."""
    now = utcnow()
    task.status = TaskStatus.QUEUED.value
    task.attempts = 0
    task.worker = None
    task.result = None
    task.error = None
    task.started_at = None
    task.finished_at = None
    task.retry_at = None
    task.duration_ms = None
    task.cancel_requested_at = None
    task.queued_at = now
    task.updated_at = now
