"""The task registry: folds task lifecycle events into one row per task.

Events arrive at least once and, across workers and retries, not always in order. Each status has
an order within an attempt (started < retrying < a final status) and attempts only grow, so an
event is applied only when it moves a task forward; a finished task never goes back. That makes
applying the same batch twice harmless.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from gateway.models import Report, ScheduleReplica, SentNotification, ServiceHeartbeat, Task
from gateway.task_events import add_events, lifecycle_event
from gateway.task_feed import TaskFeed
from prs_shared.messaging.deals import AUDIT_REPORT_GENERATED, AuditReportGenerated
from prs_shared.messaging.envelope import Priority
from prs_shared.messaging.handlers import BatchHandler, BatchHandlerRegistry, Item
from prs_shared.messaging.messages import (
    HEARTBEAT,
    LIFECYCLE_EVENTS,
    TASK_OUTCOMES,
    Heartbeat,
    TaskLifecycle,
    TaskOutcomes,
    TaskStatus,
    expand_outcomes,
)
from prs_shared.messaging.notifications import (
    NOTIFICATION_FAILED,
    NOTIFICATION_SENT,
    NotificationOutcome,
)
from prs_shared.messaging.registry_feed import REGISTRY_TYPES
from prs_shared.messaging.schedule import SCHEDULE_CHANGED, ScheduleState
from prs_shared.messaging.subscription import Subscription, fold
from prs_shared.messaging.topology import Topology, declare_work_queue

_PHASE = {
    TaskStatus.QUEUED: 0,
    TaskStatus.STARTED: 1,
    TaskStatus.RETRYING: 2,
}
_FINAL_PHASE = 3


def _position(status: TaskStatus, attempt: int) -> tuple[int, int]:
    return (attempt, _PHASE.get(status, _FINAL_PHASE))


def advance(task: dict[str, Any] | None, event: TaskLifecycle) -> dict[str, Any] | None:
    """The task's new fields after ``event``, or None when the event changes nothing."""
    if task is not None:
        current = TaskStatus(task["status"])
        if current.terminal:
            return None
        if not event.status.terminal and _position(event.status, event.attempt) <= _position(
            current, task["attempts"]
        ):
            return None
    changes: dict[str, Any] = {
        "status": event.status.value,
        "attempts": max(event.attempt, task["attempts"] if task else 0),
        "service": event.service,
        "worker": event.worker,
        "updated_at": event.at,
        # The task moved on: whatever task monitoring found stuck about it is over (ADR 0008).
        "stalled_at": None,
        "stalled_reason": None,
    }
    if event.status == TaskStatus.STARTED and (task is None or task.get("started_at") is None):
        changes["started_at"] = event.at
    if event.status == TaskStatus.RETRYING:
        changes["retry_at"] = event.retry_at
        changes["error"] = event.error
    if event.status.terminal:
        if event.duration_ms is not None and (task is None or task.get("started_at") is None):
            # Short tasks are not announced STARTED; their duration tells when they started.
            changes["started_at"] = event.at - timedelta(milliseconds=event.duration_ms)
        changes["finished_at"] = event.at
        changes["result"] = event.result
        changes["error"] = event.error
        changes["duration_ms"] = event.duration_ms
        changes["retry_at"] = None
    if task is None:
        # A task the gateway did not queue (the scheduler's, another service's): the event tells
        # what the gateway would have recorded when queuing it.
        changes.update(
            task_type=event.task_type,
            queue=event.queue,
            priority=(event.priority or Priority.MEDIUM).value,
            queued_at=event.queued_at or event.at,
        )
    return changes


async def apply_lifecycle(
    messages: Sequence[Item[TaskLifecycle | TaskOutcomes]],
    session: AsyncSession,
    feed: TaskFeed | None,
) -> None:
    """A batch's lifecycle events into the task rows and the task history, batched.

    A worker's ``task.outcomes`` counts as the events of each of its tasks. Every event is
    history, even one that no longer moves its task (a retry that arrives after the next attempt
    started): the history keeps it, keyed by its message id, once. Once the transaction has
    committed, ``feed`` hears which tasks moved.
    """
    items = list(_lifecycles(messages))
    ids = sorted({str(i.payload.task_id) for i in items})
    stmt = select(Task).where(Task.task_id.in_(ids))
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # Two gateway processes may fold events of the same task; lock rows in id order.
        stmt = stmt.order_by(Task.task_id).with_for_update()
    existing = {t.task_id: t for t in (await session.execute(stmt)).scalars()}
    await add_events(session, [lifecycle_event(i.envelope, i.payload) for i in items])
    moved: dict[str, str | None] = {}
    for item in sorted(items, key=lambda i: i.payload.at):
        envelope, event = item.envelope, item.payload
        key = str(event.task_id)
        task = existing.get(key)
        changes = advance(_as_dict(task) if task else None, event)
        if changes is None:
            continue
        if task is None:
            task = Task(
                task_id=key,
                organization_id=envelope.organization_id,
                correlation_id=str(envelope.correlation_id),
                **changes,
            )
            session.add(task)
            existing[key] = task
        else:
            for field, value in changes.items():
                setattr(task, field, value)
        moved[key] = task.organization_id
    if feed is not None and moved:
        _tell_after_commit(session, feed, moved)


def _tell_after_commit(session: AsyncSession, feed: TaskFeed, moved: dict[str, str | None]) -> None:
    """Tell ``feed`` of the moved tasks when (and only if) the session's transaction commits;
    a session that rolls back is discarded with its listener (the runtime opens one per try)."""

    def committed(_session: Session) -> None:
        feed.changed(set(moved.values()), moved)

    event.listen(session.sync_session, "after_commit", committed, once=True)


def _lifecycles(
    messages: Sequence[Item[TaskLifecycle | TaskOutcomes]],
) -> Iterator[Item[TaskLifecycle]]:
    for message in messages:
        if isinstance(message.payload, TaskOutcomes):
            for envelope, lifecycle in expand_outcomes(message.envelope, message.payload):
                yield Item(envelope, lifecycle)
        else:
            yield Item(message.envelope, message.payload)


async def record_reports(
    items: Sequence[Item[AuditReportGenerated]], session: AsyncSession, deps: None
) -> None:
    for item in items:
        report = item.payload
        if await session.get(Report, report.report_id) is not None:
            continue
        session.add(
            Report(
                report_id=report.report_id,
                organization_id=report.organization_id,
                report_type=report.report_type,
                days=report.days,
                files=report.files,
                requested_by=report.requested_by,
                generated_at=item.envelope.occurred_at,
            )
        )


NotificationStatus = Literal["sent", "failed"]


async def record_notifications(
    items: Sequence[Item[NotificationOutcome]], session: AsyncSession, status: NotificationStatus
) -> None:
    for item in items:
        envelope, outcome = item.envelope, item.payload
        if await session.get(SentNotification, str(envelope.id)) is not None:
            continue
        session.add(
            SentNotification(
                event_id=str(envelope.id),
                organization_id=envelope.organization_id,
                notification_type=outcome.notification_type.value,
                recipients=outcome.recipients,
                status=status,
                message_id=outcome.message_id,
                error=outcome.error,
                at=envelope.occurred_at,
            )
        )


def _as_dict(task: Task) -> dict[str, Any]:
    return {"status": task.status, "attempts": task.attempts, "started_at": task.started_at}


async def apply_heartbeats(
    items: Sequence[Item[Heartbeat]], session: AsyncSession, deps: None
) -> None:
    """The last heartbeat of each worker in the batch."""
    beats = {i.payload.worker: (i.payload, i.envelope.occurred_at) for i in items}
    existing = {
        h.worker: h
        for h in (
            await session.execute(
                select(ServiceHeartbeat).where(ServiceHeartbeat.worker.in_(list(beats)))
            )
        ).scalars()
    }
    for worker, (beat, seen) in beats.items():
        row = existing.get(worker)
        if row is None:
            row = ServiceHeartbeat(worker=worker)
            session.add(row)
        row.service = beat.service
        row.started_at = beat.started_at
        row.last_seen = seen
        row.in_flight = beat.in_flight
        row.processed = beat.processed
        row.queues = beat.queues


async def replicate_schedules(
    items: Sequence[Item[ScheduleState]], session: AsyncSession, deps: None
) -> None:
    """The scheduler's announcements into the gateway's copy; the highest revision wins."""
    latest: dict[str, ScheduleState] = {}
    for item in items:
        seen = latest.get(item.payload.job)
        if seen is None or item.payload.revision >= seen.revision:
            latest[item.payload.job] = item.payload
    stmt = select(ScheduleReplica).where(ScheduleReplica.job.in_(sorted(latest)))
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.order_by(ScheduleReplica.job).with_for_update()
    existing = {row.job: row for row in (await session.execute(stmt)).scalars()}
    for job, announced in latest.items():
        row = existing.get(job)
        # Equal revisions are copies (every scheduler start announces); applying one is harmless.
        if row is not None and row.revision > announced.revision:
            continue
        if row is None:
            row = ScheduleReplica(job=job)
            session.add(row)
        for field, value in announced.model_dump().items():
            setattr(row, field, value)


def registry_handlers(feed: TaskFeed | None = None) -> BatchHandlerRegistry:
    """What the registry folds, and how; its queue is bound to the same types
    (``REGISTRY_TYPES``). ``feed`` hears of the tasks each committed fold moved."""
    return BatchHandlerRegistry(
        [
            BatchHandler((*LIFECYCLE_EVENTS, TASK_OUTCOMES), apply_lifecycle, feed),
            BatchHandler((HEARTBEAT,), apply_heartbeats, None),
            BatchHandler((AUDIT_REPORT_GENERATED,), record_reports, None),
            BatchHandler((NOTIFICATION_SENT,), record_notifications, "sent"),
            BatchHandler((NOTIFICATION_FAILED,), record_notifications, "failed"),
            BatchHandler((SCHEDULE_CHANGED,), replicate_schedules, None),
        ]
    )


def registry_subscription(
    topology: Topology, queue: str, feed: TaskFeed | None = None
) -> Subscription:
    """The registry's own events queue: large batches, no inbox (the fold is idempotent)."""
    handlers = registry_handlers(feed)
    return Subscription(
        queue=queue,
        declare=functools.partial(
            declare_work_queue,
            topology=topology,
            queue_name=queue,
            routing_keys=list(REGISTRY_TYPES),
            exchange=topology.events_exchange,
        ),
        work=fold(handlers),
        accepts=frozenset(handlers.types()),
        batch_size=500,
        # A tenth of it (0.5 ms) without a delivery ends the wait: a lone outcome is folded at
        # once, while under load the outcomes stream in faster than that and fill the batch.
        batch_wait=0.005,
        concurrency=2,
        inbox=False,
        announce=False,
        prefetch=1000,
    )
