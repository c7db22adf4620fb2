"""Task monitoring (``schedule.task_monitoring``, every 10 minutes): find stuck tasks, flag them,
requeue those whose worker died (ADR 0008).

A task is stuck when it is

- ``no_consumer``: QUEUED for longer than ``PRS_STALLED_QUEUED_AFTER_SECONDS`` while the broker
  counts no consumer on its queue. Flagged only: a republished command would wait in the same
  queue.
- ``dead_worker``: STARTED on a worker whose heartbeat is older than
  ``PRS_HEARTBEAT_STALE_SECONDS`` (or that never sent one). Requeued with the message id of the
  command it runs, at most ``PRS_STALLED_REQUEUE_LIMIT`` times: if the original did finish, the
  consumer's inbox answers with the stored outcome instead of running it again.
- ``time_limit``: STARTED for longer than its task type's limit (``PRS_STALLED_AFTER_SECONDS``
  for every type until per-type limits exist). Flagged only: its worker is alive, and a second
  copy would run beside the first.

Ages are measured from the tick's ``scheduled_for``, never the wall clock: a late delivery judges
by the time it was meant for, and a test can send a tick from the future.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from prometheus_client import Counter, Gauge
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.broker_view import queue_stats
from gateway.models import ServiceHeartbeat, Task
from gateway.requeue import requeue
from gateway.settings import GatewaySettings
from prs_shared.messaging import catalog
from prs_shared.messaging.catalog import UnknownMessageType
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.messages import TaskStatus
from prs_shared.messaging.schedule import ScheduleTick
from prs_shared.messaging.time_limits import TimeLimits
from prs_shared.service import ServiceHost

log = logging.getLogger(__name__)

MONITOR = "task_monitoring"
"""Who requeued a stalled task, as its history tells (``detail.by``)."""
REPORTED_IDS = 50
"""Task ids a run's summary names at most; the counts are always complete."""


class StallReason(StrEnum):
    NO_CONSUMER = "no_consumer"
    TIME_LIMIT = "time_limit"
    DEAD_WORKER = "dead_worker"


STALLED_TASKS = Gauge(
    "prs_stalled_tasks",
    "Tasks task monitoring flagged as stuck and that have not moved on since, by reason. Every "
    "gateway replica reads the same table: aggregate with max, not sum.",
    ["reason"],
)
STALLED_REQUEUES = Counter(
    "prs_stalled_requeues_total",
    "Stalled tasks task monitoring requeued (their worker stopped sending heartbeats).",
)

TimeLimit = Callable[[str], timedelta]
"""A task type's time limit: how long it may stay STARTED before it counts as stuck."""


def uniform_limit(seconds: float) -> TimeLimit:
    """The same limit for every task type."""
    limit = timedelta(seconds=seconds)
    return lambda task_type: limit


def per_type_limit(limits: TimeLimits, fallback_seconds: float) -> TimeLimit:
    """Twice the type's hard time limit (ADR 0009), or ``fallback_seconds`` for a type without.

    A handler past its hard limit is cancelled and its delivery retried or failed, so a task
    still STARTED at twice that limit has nobody working on it any more.
    """
    fallback = timedelta(seconds=fallback_seconds)

    def limit(task_type: str) -> timedelta:
        hard = limits.for_type(task_type).hard
        return timedelta(seconds=2 * hard) if hard else fallback

    return limit


class Consumers(Protocol):
    """Consumers per command queue (``workflow``, not its broker name), as the broker counts
    them now; a queue it could not look at is missing from the answer."""

    def __call__(self) -> Awaitable[Mapping[str, int]]: ...


class BrokerConsumers:
    """:class:`Consumers` through the gateway host's own connection (passive declarations).

    The host is attached after it is built: the handlers that use this are part of building it.
    """

    def __init__(self) -> None:
        self._host: ServiceHost | None = None

    def attach(self, host: ServiceHost) -> None:
        self._host = host

    async def __call__(self) -> Mapping[str, int]:
        if self._host is None:
            raise RuntimeError("BrokerConsumers used before its host was attached")
        topology = self._host.topology
        stats = {s.name: s.consumers for s in await queue_stats(self._host.connection, topology)}
        counts: dict[str, int] = {}
        for queue in topology.command_queues:
            found = stats.get(topology.queue(queue))
            if found is not None:
                counts[queue] = found
        return counts


class TaskMonitor:
    """Finds stuck tasks in the registry and flags (and where safe, requeues) them."""

    def __init__(
        self,
        consumers: Consumers,
        *,
        queued_after: timedelta,
        time_limit: TimeLimit,
        heartbeat_stale: timedelta,
        requeue_limit: int,
    ) -> None:
        self.consumers = consumers
        self.queued_after = queued_after
        self.time_limit = time_limit
        self.heartbeat_stale = heartbeat_stale
        self.requeue_limit = requeue_limit

    @classmethod
    def from_settings(cls, settings: GatewaySettings, consumers: Consumers) -> TaskMonitor:
        return cls(
            consumers,
            queued_after=timedelta(seconds=settings.stalled_queued_after_seconds),
            time_limit=per_type_limit(
                settings.resolved_time_limits(), settings.stalled_after_seconds
            ),
            heartbeat_stale=timedelta(seconds=settings.heartbeat_stale_seconds),
            requeue_limit=settings.stalled_requeue_limit,
        )

    async def run(self, ctx: HandlerContext, now: datetime) -> dict[str, Any]:
        """One pass at ``now``: flag what is stuck, stage requeues on ``ctx``; the summary."""
        session = ctx.session
        found: dict[StallReason, list[Task]] = {reason: [] for reason in StallReason}
        consumers = await self._consumers()
        if consumers is not None:
            for task in await self._queued(session, now, consumers):
                found[StallReason.NO_CONSUMER].append(task)
        started = await self._started(session)
        alive = await self._alive(session, started, now)
        for task in started:
            reason = self._judge(task, alive, now)
            if reason is not None:
                found[reason].append(task)
        for reason, tasks in found.items():
            for task in tasks:
                if task.stalled_at is None:
                    task.stalled_at = now
                    log.warning("task %s (%s) stalled: %s", task.task_id, task.task_type, reason)
                task.stalled_reason = reason.value
        requeued, capped = [], []
        for task in found[StallReason.DEAD_WORKER]:
            if task.stalled_requeues >= self.requeue_limit or not _requeueable(task):
                capped.append(task)
                continue
            dead = task.worker
            task.stalled_requeues += 1
            command = await requeue(
                session,
                task,
                how="stalled",
                by=MONITOR,
                same_message=True,
                reason=StallReason.DEAD_WORKER.value,
                worker=dead,
            )
            ctx.emit(command, queue=task.queue)
            requeued.append(task)
        if requeued:
            STALLED_REQUEUES.inc(len(requeued))
        return {
            **{reason.value: len(tasks) for reason, tasks in found.items()},
            "requeued": len(requeued),
            "not_requeued": len(capped),
            "consumers_known": consumers is not None,
            "stalled": _ids(t for tasks in found.values() for t in tasks),
            "requeued_tasks": _ids(requeued),
        }

    async def _consumers(self) -> Mapping[str, int] | None:
        try:
            return await self.consumers()
        except Exception as exc:
            # Without the broker's count nothing is known to lack a consumer: flag none.
            log.warning("task monitoring: consumers not counted: %s", type(exc).__name__)
            return None

    async def _queued(
        self, session: AsyncSession, now: datetime, consumers: Mapping[str, int]
    ) -> list[Task]:
        idle = sorted(q for q, n in consumers.items() if n == 0)
        if not idle:
            return []
        waiting = func.coalesce(Task.queued_at, Task.updated_at)
        stmt = select(Task).where(
            Task.status == TaskStatus.QUEUED.value,
            Task.queue.in_(idle),
            waiting < now - self.queued_after,
        )
        return list((await session.execute(_locked(session, stmt))).scalars())

    async def _started(self, session: AsyncSession) -> list[Task]:
        stmt = select(Task).where(Task.status == TaskStatus.STARTED.value)
        return list((await session.execute(_locked(session, stmt))).scalars())

    async def _alive(
        self, session: AsyncSession, started: Sequence[Task], now: datetime
    ) -> frozenset[str]:
        workers = sorted({t.worker for t in started if t.worker})
        if not workers:
            return frozenset()
        rows = await session.execute(
            select(ServiceHeartbeat.worker).where(
                ServiceHeartbeat.worker.in_(workers),
                ServiceHeartbeat.last_seen >= now - self.heartbeat_stale,
            )
        )
        return frozenset(rows.scalars())

    def _judge(self, task: Task, alive: frozenset[str], now: datetime) -> StallReason | None:
        since = task.started_at or task.updated_at
        # A task younger than the heartbeat window may run on a worker whose first heartbeat
        # is not folded yet: its worker is judged at the next pass.
        if task.worker and since < now - self.heartbeat_stale and task.worker not in alive:
            return StallReason.DEAD_WORKER
        if since < now - self.time_limit(task.task_type):
            return StallReason.TIME_LIMIT
        return None


def _locked(session: AsyncSession, stmt: Select[Task]) -> Select[Task]:
    """Row locks on PostgreSQL, in id order like the registry's fold; rows the fold holds now
    are moving on and are skipped (the next pass sees them)."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        return stmt.order_by(Task.task_id).with_for_update(skip_locked=True)
    return stmt.order_by(Task.task_id)


def _requeueable(task: Task) -> bool:
    """A command the registry can send again: its payload is kept and its type is known."""
    try:
        catalog.lookup(task.task_type)
    except UnknownMessageType:
        return False
    return task.payload is not None and task.message_id is not None


def _ids(tasks: Iterable[Task]) -> list[str]:
    return [t.task_id for t in tasks][:REPORTED_IDS]


async def stalled_counts(session: AsyncSession) -> dict[str, int]:
    """Flagged tasks by reason (every reason, 0 when none)."""
    rows = await session.execute(
        select(Task.stalled_reason, func.count())
        .where(Task.stalled_at.is_not(None))
        .group_by(Task.stalled_reason)
    )
    counts = dict.fromkeys((r.value for r in StallReason), 0)
    for reason, n in rows:
        if reason in counts:
            counts[reason] = int(n)
    return counts


async def refresh_gauge(session: AsyncSession) -> None:
    """Set ``prs_stalled_tasks`` from the table at scrape time, so that every replica reports
    the same, current number; left as it was if the database fails."""
    try:
        counts = await stalled_counts(session)
    except Exception as exc:
        log.warning("stalled tasks not counted: %s", type(exc).__name__)
        return
    for reason, n in counts.items():
        STALLED_TASKS.labels(reason).set(n)


async def handle_task_monitoring(
    payload: ScheduleTick, ctx: HandlerContext, deps: TaskMonitor
) -> dict[str, Any]:
    """The ten-minutely task monitoring: stuck tasks flagged, dead workers' tasks requeued.

    Returns counts by reason and of requeues (the run's result in process-status).
    """
    return await deps.run(ctx, payload.scheduled_for)
