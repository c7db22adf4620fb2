"""Queuing a task: the registry row and the command leave in one transaction (the outbox)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import Task
from prs_shared.messaging import catalog
from prs_shared.messaging.envelope import Envelope, Priority, utcnow
from prs_shared.messaging.messages import TaskStatus
from prs_shared.messaging.outbox import add_to_outbox
from prs_shared.messaging.topology import Topology


@dataclass(frozen=True)
class QueuedTask:
    task_id: uuid.UUID
    queue: str
    status: TaskStatus


async def queue_task(
    session: AsyncSession,
    topology: Topology,
    *,
    type_: str,
    payload: BaseModel,
    priority: Priority = Priority.MEDIUM,
    organization_id: str | None = None,
    queued_by: str | None = None,
    queue: str | None = None,
    correlation_id: uuid.UUID | None = None,
) -> QueuedTask:
    """Record the task as QUEUED and stage its command; the caller commits."""
    spec = catalog.lookup(type_)
    target = queue or spec.queue
    assert spec.kind == "command"
    assert target is not None
    task_id = uuid.uuid4()
    now = utcnow()
    envelope_fields: dict[str, Any] = {
        "type": type_,
        "payload": payload.model_dump(mode="json"),
        "task_id": task_id,
        "priority": priority,
        "organization_id": organization_id,
    }
    if correlation_id is not None:
        envelope_fields["correlation_id"] = correlation_id
    envelope = Envelope(**envelope_fields)
    session.add(
        Task(
            task_id=str(task_id),
            task_type=type_,
            queue=target,
            priority=priority.value,
            status=TaskStatus.QUEUED.value,
            organization_id=organization_id,
            queued_by=queued_by,
            correlation_id=str(envelope.correlation_id),
            attempts=0,
            payload=envelope.payload,
            message_id=str(envelope.id),
            queued_at=now,
            updated_at=now,
        )
    )
    await add_to_outbox(session, [(envelope, target)], topology)
    return QueuedTask(task_id, target, TaskStatus.QUEUED)
