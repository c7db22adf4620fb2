"""What every service handles: the diagnostic task, cancellations, the inbox's housekeeping and
the plan of it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import delete, func, select

from prs_shared.db.sizes import stored_bytes
from prs_shared.db.tables import inbox
from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.handlers import Handler, HandlerContext
from prs_shared.messaging.housekeeping import (
    CLEANUP_PLAN,
    CleanupPlanRequest,
    PlannedSweep,
    ServicePlan,
)
from prs_shared.messaging.inbox import mark_cancelled
from prs_shared.messaging.messages import CANCEL_TASK, PING, CancelTask, Ping
from prs_shared.messaging.schedule import SESSION_CLEANUP, ScheduleTick


class Pong(BaseModel):
    """The answer to a ping: who handled it, and where it came from."""

    model_config = ConfigDict(frozen=True)

    service: str
    worker: str
    queue: str
    attempt: int
    answered_at: AwareDatetime
    note: str | None


async def handle_ping(payload: Ping, ctx: HandlerContext, deps: None) -> Pong:
    """Answer with who handled the ping and where it came from."""
    return Pong(
        service=ctx.service,
        worker=ctx.worker,
        queue=ctx.queue,
        attempt=ctx.attempt,
        answered_at=utcnow(),
        note=payload.note,
    )


async def handle_cancel(payload: CancelTask, ctx: HandlerContext, deps: None) -> None:
    """Record the command's id in the inbox as dealt with, so that it is skipped on arrival.

    A command that already ran has its own inbox row: then it is too late, and nothing changes.
    """
    await mark_cancelled(ctx.session, str(payload.message_id), str(payload.task_id))


INBOX_RETENTION = timedelta(days=7)
"""How long a processed message id is remembered: a redelivery older than this would run again.
RabbitMQ redelivers within minutes; a week covers replays of dead letters too."""


class ServiceCleanup(Protocol):
    """A service's own part of the hourly housekeeping: delete what it keeps past retention.

    It runs in the tick's transaction (``ctx.session``), after the inbox is trimmed, and returns
    what it removed; the keys are merged into the tick's result.
    """

    async def __call__(self, tick: ScheduleTick, ctx: HandlerContext) -> Mapping[str, Any]: ...

    async def plan(self, now: datetime, ctx: HandlerContext) -> Sequence[PlannedSweep]:
        """What a run at ``now`` would remove, reading the same rows; deletes nothing."""
        ...


async def handle_session_cleanup(
    payload: ScheduleTick, ctx: HandlerContext, deps: Sequence[ServiceCleanup]
) -> dict[str, Any]:
    """The scheduler's hourly housekeeping tick: forget processed message ids past retention,
    then let the service delete what else it owns past its retention."""
    cutoff = payload.scheduled_for - INBOX_RETENTION
    result = await ctx.session.execute(delete(inbox).where(inbox.c.processed_at < cutoff))
    outcome: dict[str, Any] = {"inbox_rows_removed": int(result.rowcount or 0)}  # type: ignore[attr-defined]
    for cleanup in deps:
        outcome.update(await cleanup(payload, ctx))
    return outcome


async def handle_cleanup_plan(
    payload: CleanupPlanRequest, ctx: HandlerContext, deps: Sequence[ServiceCleanup]
) -> ServicePlan:
    """``housekeeping.cleanup_plan``: what this service's part of the cleanup would remove."""
    now = payload.at or utcnow()
    sweeps = [await plan_inbox(now, ctx)]
    for cleanup in deps:
        sweeps.extend(await cleanup.plan(now, ctx))
    return ServicePlan(service=ctx.service, worker=ctx.worker, at=now, sweeps=sweeps)


async def plan_inbox(now: datetime, ctx: HandlerContext) -> PlannedSweep:
    cutoff = now - INBOX_RETENTION
    size = stored_bytes(
        [inbox.c.message_id, inbox.c.message_type, inbox.c.task_id, inbox.c.result], ctx.session
    )
    rows, total = (
        await ctx.session.execute(
            select(func.count(), func.coalesce(func.sum(size), 0)).where(
                inbox.c.processed_at < cutoff
            )
        )
    ).one()
    return PlannedSweep(
        job="system_cleanup",
        kind="inbox_ids",
        description="ids of processed messages (the inbox)",
        retention_seconds=INBOX_RETENTION.total_seconds(),
        cutoff=cutoff,
        rows=int(rows),
        bytes=int(total),
    )


def base_handlers(cleanups: Sequence[ServiceCleanup] = ()) -> list[Handler[Any, Any]]:
    """The handlers every service has; the head of each service's handler list.

    ``cleanups`` are the service's own parts of the hourly system cleanup.
    """
    return [
        Handler(PING, handle_ping, None),
        Handler(CANCEL_TASK, handle_cancel, None),
        Handler(SESSION_CLEANUP, handle_session_cleanup, tuple(cleanups)),
        Handler(CLEANUP_PLAN, handle_cleanup_plan, tuple(cleanups)),
    ]
