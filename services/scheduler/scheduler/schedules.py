"""The ``schedules`` table: seeded once from the environment, read by the loop every tick,
changed at run time (each change in the audit log), and announced to replicas as
``scheduler.schedule_changed``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.schedule import SCHEDULE_CHANGED, ScheduleState
from scheduler.firing import is_valid
from scheduler.jobs import Job
from scheduler.models import Run, Schedule, ScheduleChange
from scheduler.sql import insert_if_absent

SEEDED_BY = "environment"


class InvalidChange(ValueError):
    """A change the schedule refuses (bad cron expression, nothing to change)."""


async def seed(
    session: AsyncSession, seeds: Mapping[str, tuple[str, bool]], now: datetime
) -> list[str]:
    """Insert the schedules not in the database yet; the names inserted.

    The environment only seeds: a schedule already stored keeps what it was changed to.
    """
    inserted = []
    for name, (cron, enabled) in seeds.items():
        values = {
            "name": name,
            "cron": cron,
            "enabled": enabled,
            "changed_at": now,
            "changed_by": SEEDED_BY,
            "revision": 0,
        }
        if await insert_if_absent(session, Schedule, values):
            inserted.append(name)
            audit(session, name, "seeded", None, _definition(cron, enabled), SEEDED_BY, now, None)
    return inserted


async def load(session: AsyncSession) -> dict[str, Schedule]:
    return {row.name: row for row in await session.scalars(select(Schedule))}


async def current(session: AsyncSession, name: str, *, lock: bool = False) -> Schedule | None:
    stmt = select(Schedule).where(Schedule.name == name).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    row: Schedule | None = await session.scalar(stmt)
    return row


async def change(
    session: AsyncSession,
    row: Schedule,
    *,
    enabled: bool | None,
    cron: str | None,
    actor: str,
    now: datetime,
    correlation_id: str | None,
) -> list[str]:
    """Apply a change to a locked row, audited; the actions taken (none when nothing changed).

    ``changed_at`` moves to now: due times before a change are never run for it, so a new cron
    expression or an enabled timer starts at its next time rather than at once.
    """
    if cron is not None and not is_valid(cron):
        raise InvalidChange(f"cron: {cron!r} is not a valid cron expression")
    actions = []
    before = _definition(row.cron, row.enabled)
    if cron is not None and cron != row.cron:
        row.cron = cron
        actions.append("cron_changed")
    if enabled is not None and enabled != row.enabled:
        row.enabled = enabled
        actions.append("enabled" if enabled else "disabled")
    if not actions:
        return actions
    row.changed_at = now
    row.changed_by = actor
    row.revision += 1
    after = _definition(row.cron, row.enabled)
    for action in actions:
        audit(session, row.name, action, before, after, actor, now, correlation_id)
    return actions


def audit(
    session: AsyncSession,
    job: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    actor: str,
    at: datetime,
    correlation_id: str | None,
) -> None:
    session.add(
        ScheduleChange(
            job=job,
            action=action,
            before=before,
            after=after,
            actor=actor or "unknown",
            correlation_id=correlation_id,
            at=at,
        )
    )


async def bump(session: AsyncSession, name: str) -> None:
    """A run changes what replicas show (its latest run): a new revision."""
    await session.execute(
        update(Schedule).where(Schedule.name == name).values(revision=Schedule.revision + 1)
    )


async def state(session: AsyncSession, job: Job) -> ScheduleState | None:
    """The schedule of ``job`` and its latest run, as replicas receive it."""
    row = await current(session, job.name)
    if row is None:
        return None
    latest = await session.scalar(
        select(Run).where(Run.job == job.name).order_by(Run.scheduled_for.desc()).limit(1)
    )
    return ScheduleState(
        job=job.name,
        cron=row.cron,
        enabled=row.enabled,
        description=job.description,
        message_type=job.message.type,
        message_kind=job.message.kind,
        revision=row.revision,
        changed_at=row.changed_at,
        changed_by=row.changed_by,
        last_run_at=latest.scheduled_for if latest else None,
        last_run_source=latest.source if latest else None,
        last_run_task_id=latest.task_id if latest else None,
    )


def announcement(
    schedule: ScheduleState, now: datetime, caused_by: Envelope | None = None
) -> Envelope:
    """The ``scheduler.schedule_changed`` event of a state (for all organizations)."""
    if caused_by is not None:
        return caused_by.caused(
            SCHEDULE_CHANGED.type, schedule, occurred_at=now, organization_id=None, task_id=None
        )
    return Envelope(
        type=SCHEDULE_CHANGED.type, occurred_at=now, payload=schedule.model_dump(mode="json")
    )


def _definition(cron: str, enabled: bool) -> dict[str, Any]:
    return {"cron": cron, "enabled": enabled}
