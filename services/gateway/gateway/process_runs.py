"""The gateway's housekeeping runs as tasks of the registry, so that process-status shows them.

The scheduler announces housekeeping as ``schedule.<job>`` events (DESIGN.md: it publishes timed
events), which carry no task id and so leave no trace in the registry. The gateway owns the
registry, so when it handles one of these ticks it records the run itself, in the tick's own
transaction: a SUCCEEDED task of the event's type, with the handler's summary as its result and
its duration. A run that fails writes nothing (its transaction rolls back); it is retried, and
after the last attempt dead-lettered with its error. Every service's dead letters reach the
gateway's archive, which then records that service's run as a DEAD_LETTERED task with the error
(:func:`failed_run`), so that process-status counts it and shows its last error, whichever
service it failed in.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from gateway.models import Task
from prs_shared.db.upsert import insert_for
from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.handlers import HandlerContext, HandlerResult, as_result
from prs_shared.messaging.messages import TaskStatus
from prs_shared.messaging.schedule import (
    FAILED_TASK_CLEANUP,
    SESSION_CLEANUP,
    SYSTEM_HEALTH_CHECK,
    TASK_MONITORING,
    ScheduleTick,
)

D = TypeVar("D")
TickHandler = Callable[[ScheduleTick, HandlerContext, D], Awaitable[HandlerResult]]

RUN_ID_NAMESPACE = uuid.UUID("0c5d6a9e-6f3b-4f55-9d1e-3a2b8c7d4e10")


HOUSEKEEPING_QUEUES = {
    SESSION_CLEANUP.type: "maintenance",
    FAILED_TASK_CLEANUP.type: "maintenance",
    TASK_MONITORING.type: "monitoring",
    SYSTEM_HEALTH_CHECK.type: "monitoring",
}
"""The ticks recorded as runs, and the seed's queue for each kind of work."""


def run_task_id(tick_message_id: str) -> str:
    """One task per tick delivered: a redelivered tick names the same task."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, tick_message_id))


def recorded(fn: TickHandler[D], queue: str) -> TickHandler[D]:
    """``fn``, its successful runs recorded in the registry as tasks of the tick's type.

    ``queue`` is the seed's queue for that kind of work (``monitoring`` or ``maintenance``), as
    the registry shows it: the tick itself reaches the gateway on its events queue.
    """

    @functools.wraps(fn)
    async def run(tick: ScheduleTick, ctx: HandlerContext, deps: D) -> HandlerResult:
        started = utcnow()
        t0 = time.perf_counter()
        result = await fn(tick, ctx, deps)
        finished = utcnow()
        values = {
            "task_id": run_task_id(str(ctx.envelope.id)),
            "task_type": ctx.envelope.type,
            "queue": queue,
            "priority": "medium",
            "status": TaskStatus.SUCCEEDED.value,
            "correlation_id": str(ctx.envelope.correlation_id),
            "attempts": ctx.attempt,
            "service": ctx.service,
            "worker": ctx.worker,
            "payload": tick.model_dump(mode="json"),
            "result": as_result(result),
            # The run's time as the scheduler names it (its schedule's last_run_at).
            "queued_at": tick.scheduled_for,
            "started_at": started,
            "finished_at": finished,
            "duration_ms": (time.perf_counter() - t0) * 1000,
            "updated_at": finished,
            "message_id": str(ctx.envelope.id),
        }
        stmt = insert_for(ctx.session, Task.__table__).values(**values)
        await ctx.session.execute(stmt.on_conflict_do_nothing(index_elements=["task_id"]))
        return result

    return run


def failed_run(
    *,
    message_id: str,
    message_type: str,
    queue: str,
    envelope: dict[str, Any],
    error: str,
    attempts: int,
    at: datetime,
) -> dict[str, Any] | None:
    """The DEAD_LETTERED task of a housekeeping tick that failed on ``queue``; None for any other
    dead letter (or a body that is not a tick)."""
    seed_queue = HOUSEKEEPING_QUEUES.get(message_type)
    if seed_queue is None:
        return None
    try:
        tick = ScheduleTick.model_validate(envelope.get("payload"))
    except ValueError:
        return None
    correlation = envelope.get("correlation_id")
    return {
        # One row per service that failed the tick (each service's events queue is its own).
        "task_id": str(uuid.uuid5(RUN_ID_NAMESPACE, f"{queue}/{message_id}")),
        "task_type": message_type,
        "queue": seed_queue,
        "priority": "medium",
        "status": TaskStatus.DEAD_LETTERED.value,
        "correlation_id": str(correlation) if isinstance(correlation, str) else None,
        "attempts": attempts,
        "payload": tick.model_dump(mode="json"),
        "error": f"{queue}: {error}",
        "queued_at": tick.scheduled_for,
        "finished_at": at,
        "updated_at": at,
        "message_id": message_id,
    }
