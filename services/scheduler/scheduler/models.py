"""The scheduler's own tables: the leader lease and the history of runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
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
