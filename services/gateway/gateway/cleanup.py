"""Retention: what the gateway deletes from its own tables, and when.

Two scheduled jobs reach the gateway: ``failed_task_cleanup`` (FAILED and DEAD_LETTERED tasks,
archived dead letters) and ``system_cleanup`` (finished tasks, idempotency keys, the notification
log, audit reports with their files, heartbeats of workers long gone, health snapshots). Each
kind of row is a :class:`Sweep`: a table, the column its age is read from, and a retention. A
run deletes at most ``batch_size`` rows per statement and ``max_batches`` statements per sweep;
what is left waits for the next run, and the report says how much that is.

The same code computes a dry run (the plan): exactly the rows, bytes and files the run would
remove at that moment, and deletes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from gateway.models import (
    Base,
    DeadLetter,
    HealthSnapshot,
    IdempotencyKey,
    Report,
    SentNotification,
    ServiceHeartbeat,
    Task,
    TaskEvent,
)
from gateway.settings import GatewaySettings
from prs_shared.db.sizes import stored_bytes
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.housekeeping import PlannedSweep
from prs_shared.messaging.messages import TaskStatus
from prs_shared.messaging.schedule import ScheduleTick
from prs_shared.messaging.webhooks import REGISTER_WEBHOOK
from prs_shared.storage import FileStore, InvalidKey

CleanupJob = Literal["failed_task_cleanup", "system_cleanup"]
JOBS: tuple[CleanupJob, ...] = ("failed_task_cleanup", "system_cleanup")


@dataclass(frozen=True)
class Sweep:
    """One kind of row the gateway deletes once it is older than ``retention``."""

    kind: str
    job: CleanupJob
    description: str
    model: type[Base]
    key: tuple[InstrumentedAttribute[Any], ...]
    """The primary key's columns."""
    age: InstrumentedAttribute[Any]
    retention: timedelta
    sized: tuple[InstrumentedAttribute[Any], ...]
    """Columns whose stored size counts as the row's bytes."""
    only: tuple[ColumnElement[bool], ...] = ()
    files: InstrumentedAttribute[Any] | None = None
    """A JSON object of file-store keys (format → key) deleted with the row."""
    belonging: tuple[InstrumentedAttribute[Any], ...] = ()
    """Columns of other tables naming the row's (one-column) key: their rows go with it."""


def sweeps(settings: GatewaySettings) -> tuple[Sweep, ...]:
    """The gateway's sweeps, with the retention its settings give."""
    failed = timedelta(days=settings.retention_failed_days)
    return (
        Sweep(
            "failed_tasks",
            "failed_task_cleanup",
            "FAILED and DEAD_LETTERED tasks",
            Task,
            (Task.task_id,),
            Task.updated_at,
            failed,
            (Task.payload, Task.result, Task.error),
            (Task.status.in_([TaskStatus.FAILED.value, TaskStatus.DEAD_LETTERED.value]),),
            belonging=(TaskEvent.task_id,),
        ),
        Sweep(
            # Replayed or not: a dead letter younger than the retention is never touched.
            "dead_letters",
            "failed_task_cleanup",
            "archived dead letters",
            DeadLetter,
            (DeadLetter.id,),
            DeadLetter.dead_lettered_at,
            failed,
            (DeadLetter.body, DeadLetter.headers, DeadLetter.last_error),
        ),
        Sweep(
            "finished_tasks",
            "system_cleanup",
            "SUCCEEDED and CANCELLED tasks",
            Task,
            (Task.task_id,),
            Task.updated_at,
            timedelta(days=settings.retention_tasks_days),
            (Task.payload, Task.result, Task.error),
            (
                Task.status.in_([TaskStatus.SUCCEEDED.value, TaskStatus.CANCELLED.value]),
                # The webhook list reads the registrations' answers (gateway.webhooks): kept.
                Task.task_type != REGISTER_WEBHOOK.type,
            ),
            belonging=(TaskEvent.task_id,),
        ),
        Sweep(
            "idempotency_keys",
            "system_cleanup",
            "Idempotency-Key records",
            IdempotencyKey,
            (IdempotencyKey.scope, IdempotencyKey.key),
            IdempotencyKey.created_at,
            timedelta(hours=settings.retention_idempotency_hours),
            (IdempotencyKey.scope, IdempotencyKey.key, IdempotencyKey.fingerprint),
        ),
        Sweep(
            "notification_log",
            "system_cleanup",
            "notification-log rows",
            SentNotification,
            (SentNotification.event_id,),
            SentNotification.at,
            timedelta(days=settings.retention_notifications_days),
            (SentNotification.recipients, SentNotification.message_id, SentNotification.error),
        ),
        Sweep(
            "reports",
            "system_cleanup",
            "audit reports and their files",
            Report,
            (Report.report_id,),
            Report.generated_at,
            timedelta(days=settings.retention_reports_days),
            (Report.files,),
            files=Report.files,
        ),
        Sweep(
            "heartbeats",
            "system_cleanup",
            "heartbeats of workers not heard from",
            ServiceHeartbeat,
            (ServiceHeartbeat.worker,),
            ServiceHeartbeat.last_seen,
            timedelta(days=settings.retention_heartbeats_days),
            (ServiceHeartbeat.queues,),
        ),
        Sweep(
            "health_snapshots",
            "system_cleanup",
            "snapshots of the scheduled health check",
            HealthSnapshot,
            (HealthSnapshot.snapshot_id,),
            HealthSnapshot.at,
            timedelta(days=settings.retention_health_days),
            (HealthSnapshot.reasons, HealthSnapshot.checks),
        ),
    )


class SweepReport(PlannedSweep):
    """What one sweep removed (or, in a dry run, would remove) in one run."""

    job: CleanupJob


class CleanupReport(BaseModel):
    """One cleanup run of the gateway, or its plan."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "dry_run": True,
                    "at": "2026-11-28T12:00:00Z",
                    "sweeps": [
                        {
                            "job": "failed_task_cleanup",
                            "kind": "dead_letters",
                            "description": "archived dead letters",
                            "retention_seconds": 2592000,
                            "cutoff": "2026-10-29T12:00:00Z",
                            "rows": 3,
                            "bytes": 1236,
                            "files": 0,
                            "file_bytes": 0,
                            "left": 0,
                        }
                    ],
                }
            ]
        },
    )

    dry_run: bool
    at: datetime = Field(description="The time retention was measured from.")
    sweeps: list[SweepReport]


def _file_keys(value: object) -> list[str]:
    if isinstance(value, Mapping):
        return [v for v in value.values() if isinstance(v, str)]
    return []


def _file_size(store: FileStore, key: str) -> int | None:
    try:
        path = store.path(key)
    except InvalidKey:
        return None
    return path.stat().st_size if path.is_file() else None


class Housekeeping:
    """Runs (or plans) the gateway's sweeps of one job against a session the caller commits."""

    def __init__(
        self, sweeps: Sequence[Sweep], store: FileStore, *, batch_size: int, max_batches: int
    ) -> None:
        self.sweeps = tuple(sweeps)
        self.store = store
        self.batch_size = batch_size
        self.max_batches = max_batches

    @classmethod
    def from_settings(cls, settings: GatewaySettings, store: FileStore) -> Housekeeping:
        return cls(
            sweeps(settings),
            store,
            batch_size=settings.cleanup_batch_size,
            max_batches=settings.cleanup_max_batches,
        )

    async def run(
        self,
        session: AsyncSession,
        now: datetime,
        *,
        jobs: Sequence[CleanupJob] = JOBS,
        dry_run: bool = False,
    ) -> CleanupReport:
        reports = [
            await self._sweep(session, sweep, now, dry_run)
            for sweep in self.sweeps
            if sweep.job in jobs
        ]
        return CleanupReport(dry_run=dry_run, at=now, sweeps=reports)

    async def _sweep(
        self, session: AsyncSession, sweep: Sweep, now: datetime, dry_run: bool
    ) -> SweepReport:
        cutoff = now - sweep.retention
        where = (sweep.age < cutoff, *sweep.only)
        size = stored_bytes(sweep.sized, session)
        rows = size_total = files = file_bytes = 0
        # A dry run reads what the run's batches would take, in the same order, without deleting.
        batches = 1 if dry_run else self.max_batches
        limit = self.batch_size * (self.max_batches if dry_run else 1)
        for _ in range(batches):
            columns: list[Any] = [size, *sweep.key]
            if sweep.files is not None:
                columns.append(sweep.files)
            batch = (
                await session.execute(
                    select(*columns).where(*where).order_by(sweep.age, *sweep.key).limit(limit)
                )
            ).all()
            if not batch:
                break
            for row in batch:
                size_total += int(row[0] or 0)
                if sweep.files is None:
                    continue
                for key in _file_keys(row[-1]):
                    found = _file_size(self.store, key)
                    if found is None:
                        continue
                    files += 1
                    file_bytes += found
                    if not dry_run:
                        # Before the rows go: should the transaction fail, the row stays and
                        # the next run finds its file already gone, which it tolerates.
                        self.store.delete(key)
            rows += len(batch)
            if not dry_run:
                width = len(sweep.key)
                keys = [tuple(row[1 : 1 + width]) for row in batch]
                await session.execute(delete(sweep.model).where(tuple_(*sweep.key).in_(keys)))
                for column in sweep.belonging:
                    # The task's history goes with the task.
                    await session.execute(
                        delete(column.class_).where(column.in_([key[0] for key in keys]))
                    )
            if len(batch) < limit:
                break
        remaining = await session.scalar(
            select(func.count()).select_from(sweep.model).where(*where)
        )
        left = int(remaining or 0) - (rows if dry_run else 0)
        return SweepReport(
            job=sweep.job,
            kind=sweep.kind,
            description=sweep.description,
            retention_seconds=sweep.retention.total_seconds(),
            cutoff=cutoff,
            rows=rows,
            bytes=size_total,
            files=files,
            file_bytes=file_bytes,
            left=left,
        )

    async def failed_task_cleanup(self, tick: ScheduleTick, ctx: HandlerContext) -> dict[str, Any]:
        """``schedule.failed_task_cleanup``: FAILED / DEAD_LETTERED tasks and dead letters."""
        report = await self.run(ctx.session, tick.scheduled_for, jobs=("failed_task_cleanup",))
        return _summary(report)

    async def __call__(self, tick: ScheduleTick, ctx: HandlerContext) -> dict[str, Any]:
        """The gateway's part of ``schedule.session_cleanup`` (the ``system_cleanup`` job)."""
        report = await self.run(ctx.session, tick.scheduled_for, jobs=("system_cleanup",))
        return _summary(report)

    async def plan(self, now: datetime, ctx: HandlerContext) -> list[PlannedSweep]:
        """Both jobs' sweeps as a run at ``now`` would make them (the cleanup plan's part)."""
        report = await self.run(ctx.session, now, dry_run=True)
        return list(report.sweeps)


def _summary(report: CleanupReport) -> dict[str, Any]:
    removed: dict[str, Any] = {f"{s.kind}_removed": s.rows for s in report.sweeps}
    removed["files_removed"] = sum(s.files for s in report.sweeps)
    return removed


async def handle_failed_task_cleanup(
    payload: ScheduleTick, ctx: HandlerContext, deps: Housekeeping
) -> dict[str, Any]:
    """The hourly failed-task cleanup: tasks that failed and dead letters past retention.

    Retention is measured from the tick's scheduled time, so a late or repeated delivery of the
    same tick removes nothing younger than the first would have.
    """
    return await deps.failed_task_cleanup(payload, ctx)
