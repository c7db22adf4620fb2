"""The gateway's own tables: task registry, API keys, service heartbeats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from prs_shared.db.types import UTCDateTime


class Base(DeclarativeBase):
    pass


class Task(Base):
    """One task as the registry knows it; the gateway's registry is its only writer."""

    __tablename__ = "tasks"

    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    task_type: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(200))
    priority: Mapped[str] = mapped_column(String(10), default="medium")
    status: Mapped[str] = mapped_column(String(20))
    organization_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    queued_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    correlation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    service: Mapped[str | None] = mapped_column(String(100), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    message_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    """Envelope id of the latest command sent for this task (cancellation names it)."""
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    stalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """When task monitoring first found the task stuck (ADR 0008); cleared when it moves on."""
    stalled_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    """Why: no_consumer, time_limit or dead_worker (``gateway.stuck_tasks.StallReason``)."""
    stalled_requeues: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Requeues task monitoring made of this task; never reset, so that the cap holds."""

    __table_args__ = (
        Index("ix_tasks_status_updated", "status", "updated_at"),
        Index("ix_tasks_org_queued", "organization_id", "queued_at"),
        Index("ix_tasks_stalled_at", "stalled_at"),
    )


class TaskEvent(Base):
    """One step of a task's life: queued, started, a retry, its outcome, a requeue.

    ``tasks`` keeps only the latest state; this is the history behind it, written in the same
    transaction as each change of state. Keyed by the message that told of the step, so an event
    delivered twice is recorded once.
    """

    __tablename__ = "task_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    """For a RETRYING step: when the next attempt is due."""
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """What else the step tells: service, queue, who queued or retried it, duration."""

    __table_args__ = (Index("ix_task_events_task_at", "task_id", "at"),)


class IdempotencyKey(Base):
    """An ``Idempotency-Key`` a caller sent with a queuing request, and the task it created.

    Written in the same transaction as the task row, so a key is never recorded without its task
    nor a task without its key; the primary key is what makes two concurrent requests one task.
    """

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(36), primary_key=True)
    """The API key's id: a key's idempotency keys are its own."""
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    """SHA-256 of what the request asked for (task type, payload, priority, organization, queue)."""
    task_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ApiKey(Base):
    """A bearer credential stored as its SHA-256 (keys are random 256-bit tokens)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    organization_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ServiceHeartbeat(Base):
    """The last heartbeat of each service instance."""

    __tablename__ = "service_heartbeats"

    worker: Mapped[str] = mapped_column(String(200), primary_key=True)
    service: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    in_flight: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(BigInteger, default=0)
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)


class Report(Base):
    """An audit report the deal-workflow service produced (from report.audit.generated)."""

    __tablename__ = "reports"

    report_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    report_type: Mapped[str] = mapped_column(String(30))
    days: Mapped[int] = mapped_column(Integer)
    files: Mapped[dict[str, str]] = mapped_column(JSON)
    requested_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeadLetter(Base):
    """A message taken from a ``<queue>.dlq`` and kept for inspection and replay."""

    __tablename__ = "dead_letters"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    queue: Mapped[str] = mapped_column(String(200), index=True)
    message_type: Mapped[str | None] = mapped_column(String(200), nullable=True)
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    organization_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    dead_lettered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SentNotification(Base):
    """What the notifier reports it sent or failed to send (from notification.sent/failed)."""

    __tablename__ = "notification_log"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    notification_type: Mapped[str] = mapped_column(String(50))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10))
    message_id: Mapped[str] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ScheduleReplica(Base):
    """The gateway's copy of one scheduler schedule (from ``scheduler.schedule_changed``).

    The scheduler owns the schedules; this copy lets the gateway list them and show them in
    process-status without calling it. ``revision`` only grows: an older copy never wins.
    """

    __tablename__ = "schedule_replicas"

    job: Mapped[str] = mapped_column(String(100), primary_key=True)
    cron: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(String(500))
    message_type: Mapped[str] = mapped_column(String(200))
    message_kind: Mapped[str] = mapped_column(String(10))
    revision: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    changed_by: Mapped[str] = mapped_column(String(200))
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_run_source: Mapped[str | None] = mapped_column(String(10), nullable=True)
    last_run_task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class HealthSnapshot(Base):
    """One run of the scheduled health check (``schedule.system_health_check``): the report of
    :func:`gateway.health.system_health` for the whole system, and whom it told."""

    __tablename__ = "health_snapshots"

    snapshot_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(10))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    checks: Mapped[dict[str, Any]] = mapped_column(JSON)
    notified: Mapped[str | None] = mapped_column(String(50), nullable=True)
    """The notification this snapshot sent the operators (an incident or its recovery)."""


class RateBucket(Base):
    """A token bucket shared by every gateway replica on one PostgreSQL database: the queuing
    allowance of an API key (scope ``queue``) or the failed-auth allowance of a client address
    (scope ``auth``)."""

    __tablename__ = "rate_buckets"

    scope: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column()
    updated: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    allowed: Mapped[bool] = mapped_column(Boolean)
    """Whether the last take got a token (``tokens`` alone cannot tell: both answers can leave
    between 0 and 1)."""
    granted: Mapped[int] = mapped_column(Integer, server_default="1")
    """How many tokens the last take got (a replica takes up to a chunk at once)."""
