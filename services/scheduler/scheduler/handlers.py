"""Handlers of the commands the scheduler consumes (on the ``system`` queue)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prs_shared.messaging.errors import PermanentError
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.schedule import RunJobNow
from scheduler.clock import Clock
from scheduler.jobs import Job
from scheduler.metrics import RUNS
from scheduler.runs import record_run


async def handle_run_now(
    payload: RunJobNow, ctx: HandlerContext, *, jobs: Mapping[str, Job], clock: Clock
) -> dict[str, Any]:
    """Run a job now, through the same run table and outbox as its schedule.

    The run is keyed by the current second, so asking twice within one second runs the job once.
    Any instance may serve this; it needs no lease, because it is not a scheduled time.
    """
    # Every job runs for all organizations, so only a caller without organization may start one;
    # to a scoped caller no job exists (DESIGN.md §3 rule 8), and the refusal says so in the
    # words used for an unknown job, without listing the schedule.
    scoped = ctx.envelope.organization_id is not None
    job = None if scoped else jobs.get(payload.job)
    if job is None:
        listing = "" if scoped else f"; jobs: {sorted(jobs)}"
        raise PermanentError(f"no job {payload.job!r} in the schedule{listing}")
    now = clock.now()
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
    RUNS.labels(job.name, "manual").inc()
    return {
        **result,
        "duplicate": False,
        "message_id": str(envelope.id),
        "task_id": str(envelope.task_id) if envelope.task_id else None,
    }
