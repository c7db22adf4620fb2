"""The run history: one row per (job, scheduled time), written with the run's message."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prs_shared.messaging.envelope import Envelope
from scheduler.jobs import Job, envelope_for
from scheduler.models import Run
from scheduler.sql import insert_if_absent

RunSource = Literal["schedule", "manual"]


async def record_run(
    session: AsyncSession,
    job: Job,
    scheduled_for: datetime,
    *,
    source: RunSource,
    holder: str,
    now: datetime,
    caused_by: Envelope | None = None,
) -> Envelope | None:
    """Insert the run row; return the message to stage in the same transaction, or None when
    the run exists already (another instance, or an earlier pass, got there first)."""
    envelope = envelope_for(job, scheduled_for, now=now, caused_by=caused_by)
    inserted = await insert_if_absent(
        session,
        Run,
        {
            "job": job.name,
            "scheduled_for": scheduled_for,
            "source": source,
            "message_type": envelope.type,
            "message_id": str(envelope.id),
            "task_id": str(envelope.task_id) if envelope.task_id else None,
            "holder": holder,
            "staged_at": now,
        },
    )
    return envelope if inserted else None


async def last_scheduled(session: AsyncSession, job: str) -> datetime | None:
    """The latest time the schedule (not an operator) ran ``job``, or None if it never did."""
    latest: datetime | None = await session.scalar(
        select(func.max(Run.scheduled_for)).where(Run.job == job, Run.source == "schedule")
    )
    return latest
