"""Rows of the task history (``task_events``), built where a task changes and written in bulk.

Every writer of the ``tasks`` table adds the matching history rows in its own transaction: the
acceptor and ``queue_task`` when a task is queued, the registry for each lifecycle event, retry
and replay when a finished task is queued again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import Task, TaskEvent
from prs_shared.db.upsert import insert_for
from prs_shared.messaging.envelope import Envelope, utcnow
from prs_shared.messaging.messages import TaskLifecycle, TaskStatus


def queued_event(task: dict[str, Any]) -> dict[str, Any]:
    """The QUEUED step of a new task's row (as ``build_task`` makes it), keyed by its command."""
    return {
        "event_id": task["message_id"],
        "task_id": task["task_id"],
        "at": task["queued_at"],
        "status": TaskStatus.QUEUED.value,
        "attempt": 0,
        "error": None,
        "worker": None,
        "retry_at": None,
        "detail": {"queue": task["queue"], "by": task.get("queued_by")},
    }


def requeued_event(task: Task, how: str, by: str | None, **detail: Any) -> dict[str, Any]:
    """The QUEUED step of a task queued again (``how``: retried, replayed, stalled); ``detail``
    adds to what the step tells (a stalled task's reason)."""
    return {
        "event_id": str(uuid.uuid4()),
        "task_id": task.task_id,
        "at": task.queued_at or utcnow(),
        "status": TaskStatus.QUEUED.value,
        "attempt": 0,
        "error": None,
        "worker": None,
        "retry_at": None,
        "detail": {"queue": task.queue, "by": by, "how": how, **detail},
    }


def lifecycle_event(envelope: Envelope, event: TaskLifecycle) -> dict[str, Any]:
    """The step a worker's lifecycle event tells of, keyed by that event's message id."""
    detail: dict[str, Any] = {"service": event.service, "queue": event.queue}
    if event.duration_ms is not None:
        detail["duration_ms"] = event.duration_ms
    return {
        "event_id": str(envelope.id),
        "task_id": str(event.task_id),
        "at": event.at,
        "status": event.status.value,
        "attempt": event.attempt,
        "error": event.error,
        "worker": event.worker,
        "retry_at": event.retry_at,
        "detail": detail,
    }


async def add_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the rows in one statement; a step already recorded (a redelivery) is skipped."""
    if not rows:
        return
    stmt = insert_for(session, TaskEvent.__table__)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["event_id"]), list(rows))


async def events_of(session: AsyncSession, task_id: str) -> list[TaskEvent]:
    """A task's history, oldest first (ties in time keep the lifecycle's order)."""
    found = await session.execute(
        select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(TaskEvent.at)
    )
    order = {s: i for i, s in enumerate(TaskStatus)}
    return sorted(found.scalars(), key=lambda e: (e.at, e.attempt, order[TaskStatus(e.status)]))
