"""Queuing a task: the registry row and the command leave in one transaction (the outbox)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import Task
from gateway.task_events import add_events, queued_event
from prs_shared.db.tables import outbox
from prs_shared.messaging import catalog
from prs_shared.messaging.envelope import Envelope, Priority, utcnow
from prs_shared.messaging.messages import TaskStatus
from prs_shared.messaging.outbox import outbox_rows
from prs_shared.messaging.topology import Topology


@dataclass(frozen=True)
class QueuedTask:
    task_id: uuid.UUID
    queue: str
    status: TaskStatus


def build_task(
    topology: Topology,
    *,
    type_: str,
    payload: BaseModel,
    priority: Priority = Priority.MEDIUM,
    organization_id: str | None = None,
    queued_by: str | None = None,
    queue: str | None = None,
    correlation_id: uuid.UUID | None = None,
) -> tuple[QueuedTask, dict[str, Any], list[dict[str, Any]]]:
    """The registry row (QUEUED) and the outbox row of a new task, not yet written."""
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
    row = {
        "task_id": str(task_id),
        "task_type": type_,
        "queue": target,
        "priority": priority.value,
        "status": TaskStatus.QUEUED.value,
        "organization_id": organization_id,
        "queued_by": queued_by,
        "correlation_id": str(envelope.correlation_id),
        "attempts": 0,
        "payload": envelope.payload,
        "message_id": str(envelope.id),
        "queued_at": now,
        "updated_at": now,
    }
    return (
        QueuedTask(task_id, target, TaskStatus.QUEUED),
        row,
        outbox_rows([(envelope, target)], topology),
    )


async def queue_task(
    session: AsyncSession,
    topology: Topology,
    **fields: Any,
) -> QueuedTask:
    """Record the task as QUEUED, with its history, and stage its command in one transaction."""
    queued, row, rows = build_task(topology, **fields)
    await session.execute(insert(Task), [row])
    await add_events(session, [queued_event(row)])
    await session.execute(insert(outbox), rows)
    return queued
