"""The scheduler's own tables: the schedules, their audit log, the leader lease, the runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from prs_shared.db.types import UTCDateTime


class Base(DeclarativeBase):
    pass


class Lease(Base):
    """Who may schedule: the holder, until ``expires_at`` unless renewed."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Run(Base):
    """One run of a job: at most one per (job, scheduled time) — the primary key sees to it."""

    __tablename__ = "runs"

    job: Mapped[str] = mapped_column(String(100), primary_key=True)
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    source: Mapped[str] = mapped_column(String(10))
    """``schedule`` (on time or caught up) or ``manual`` (``schedule.run_now``)."""
    message_type: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str] = mapped_column(String(36))
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    """Set for command jobs; events are not tasks."""
    holder: Mapped[str] = mapped_column(String(200))
    """The scheduler instance that staged the run."""
    staged_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """When the message was put in the outbox, in the run's transaction; the relay publishes it
    right after the commit."""


class Schedule(Base):
    """When a job of the table runs, and whether it does: seeded from the environment on first
    start, changed at run time afterwards; the loop reads it every tick."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    cron: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    """Due times at or before a change are not run: a new cron starts at its next time."""
    changed_by: Mapped[str] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(Integer, default=0)
    """Grows with every change and every run; replicas keep the highest."""


class ScheduleChange(Base):
    """The audit log of schedules: who changed what, when, from what."""

    __tablename__ = "schedule_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(20))
    """``seeded``, ``enabled``, ``disabled``, ``cron_changed``, ``run_now``."""
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    correlation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
