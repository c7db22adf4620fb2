"""Handlers of the commands the scheduler consumes (on the ``system`` queue)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prs_shared.messaging.errors import PermanentError
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.schedule import RunJobNow, UpdateSchedule
from scheduler.clock import Clock
from scheduler.jobs import Job, current_name
from scheduler.metrics import RUNS
from scheduler.models import Schedule
from scheduler.runs import record_run
from scheduler.schedules import InvalidChange, announcement, audit, bump, change, current, state


@dataclass(frozen=True)
class ScheduleDeps:
    """What the scheduler's command handlers need besides their message."""

    jobs: Mapping[str, Job]
    """The schedule, by job name."""
    clock: Clock


async def _schedule_of(
    name: str, ctx: HandlerContext, jobs: Mapping[str, Job]
) -> tuple[Job, Schedule]:
    """The job and its (locked) schedule row, or the refusal a caller gets for an unknown job.

    Every job runs for all organizations, so only a caller without organization may start or
    change one; to a scoped caller no job exists (DESIGN.md §3 rule 8), and the refusal says so in
    the words used for an unknown job, without listing the schedule.
    """
    scoped = ctx.envelope.organization_id is not None
    job = None if scoped else jobs.get(current_name(name))
    row = None if job is None else await current(ctx.session, job.name, lock=True)
    if job is None:
        listing = "" if scoped else f"; jobs: {sorted(jobs)}"
        raise PermanentError(f"no job {name!r} in the schedule{listing}")
    if row is None:
        # A known job whose row the first tick has not stored yet (a command that arrived
        # while the scheduler was starting): retried, not refused.
        raise ScheduleNotSeeded(f"the schedule of {job.name!r} is not stored yet")
    return job, row


class ScheduleNotSeeded(RuntimeError):
    """A known job's schedule row does not exist yet; retrying finds it."""


async def handle_run_now(
    payload: RunJobNow, ctx: HandlerContext, deps: ScheduleDeps
) -> dict[str, Any]:
    """Run a job now, through the same run table and outbox as its schedule.

    The run is keyed by the current second, so asking twice within one second runs the job once.
    Any instance may serve this; it needs no lease, because it is not a scheduled time. A disabled
    schedule is refused: disabling a process stops it, whoever asks.
    """
    job, row = await _schedule_of(payload.job, ctx, deps.jobs)
    if not row.enabled:
        raise PermanentError(f"job {job.name!r} is disabled; enable it first")
    now = deps.clock.now()
    scheduled_for = now.replace(microsecond=0)
    envelope = await record_run(
        ctx.session,
        job,
        scheduled_for,
        source="manual",
        holder=ctx.worker,
        now=now,
        caused_by=ctx.envelope,
    )
    result: dict[str, Any] = {"job": job.name, "scheduled_for": scheduled_for.isoformat()}
    if envelope is None:
        return {**result, "duplicate": True}
    ctx.emit(envelope)
    audit(
        ctx.session,
        job.name,
        "run_now",
        None,
        {"scheduled_for": scheduled_for.isoformat(), "task_id": result_task(envelope)},
        payload.requested_by,
        now,
        str(ctx.envelope.correlation_id),
    )
    await bump(ctx.session, job.name)
    await _announce(job, ctx, now)
    RUNS.labels(job.name, "manual").inc()
    return {
        **result,
        "duplicate": False,
        "message_id": str(envelope.id),
        "task_id": result_task(envelope),
    }


async def handle_update(
    payload: UpdateSchedule, ctx: HandlerContext, deps: ScheduleDeps
) -> dict[str, Any]:
    """Enable, disable or re-time a schedule; the loop applies it at its next tick.

    An invalid cron expression is a permanent error naming ``cron`` (the gateway refuses it
    before queuing; this is the owner's own check).
    """
    job, row = await _schedule_of(payload.job, ctx, deps.jobs)
    now = deps.clock.now()
    try:
        actions = await change(
            ctx.session,
            row,
            enabled=payload.enabled,
            cron=payload.cron,
            actor=payload.requested_by,
            now=now,
            correlation_id=str(ctx.envelope.correlation_id),
        )
    except InvalidChange as refused:
        raise PermanentError(str(refused)) from None
    if actions:
        await ctx.session.flush()
        await _announce(job, ctx, now)
    return {"job": job.name, "cron": row.cron, "enabled": row.enabled, "changed": actions}


async def _announce(job: Job, ctx: HandlerContext, now: Any) -> None:
    await ctx.session.flush()
    announced = await state(ctx.session, job)
    if announced is not None:
        ctx.emit(announcement(announced, now, caused_by=ctx.envelope))


def result_task(envelope: Any) -> str | None:
    return str(envelope.task_id) if envelope.task_id else None
