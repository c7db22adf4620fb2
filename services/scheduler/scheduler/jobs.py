"""The jobs: what each one sends, and the cron expression it is seeded with.

When a job runs, and whether it runs at all, lives in the ``schedules`` table
(:mod:`scheduler.schedules`): this table only gives its first values, with the environment's
changes applied (:func:`seeds`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from prs_shared.messaging import deals, schedule
from prs_shared.messaging.catalog import MessageSpec
from prs_shared.messaging.envelope import Envelope, Priority
from scheduler.firing import is_valid

# Message ids of runs are derived from (job, scheduled time), so that even a copy of a run sent
# twice would meet the consumers' inbox as one message.
RUN_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:prs:scheduler:run")


@dataclass(frozen=True)
class Job:
    """One row of the schedule: a cron expression (UTC) and the message each run sends.

    A command job sends ``message`` with ``arguments`` as its payload; an event job sends a
    ``schedule.*`` event with :class:`~prs_shared.messaging.schedule.ScheduleTick`. ``cron`` is
    the seed's value; the running schedule is the database's.
    """

    name: str
    cron: str
    message: MessageSpec
    description: str
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not is_valid(self.cron):
            raise ValueError(f"job {self.name}: invalid cron expression {self.cron!r}")
        if self.message.kind == "event" and (
            not self.message.type.startswith("schedule.")
            or self.message.payload is not schedule.ScheduleTick
        ):
            raise ValueError(f"job {self.name}: its event must be a schedule.* tick")
        # Wrong arguments fail when the table is built, not at the job's first run.
        self.payload(datetime(2000, 1, 1, tzinfo=UTC))

    def payload(self, scheduled_for: datetime) -> BaseModel:
        if self.message.kind == "event":
            return schedule.ScheduleTick(job=self.name, scheduled_for=scheduled_for)
        return self.message.payload.model_validate(dict(self.arguments))


JOBS: tuple[Job, ...] = (
    Job(
        "deal_verification_reminders",
        "0 0 * * *",
        deals.RUN_VERIFICATION_REMINDERS,
        "Daily at midnight: remind verifiers of deals pending for more than a day.",
    ),
    Job(
        "commission_calculation",
        "0 */6 * * *",
        deals.RUN_COMMISSION_CALCULATION,
        "Every 6 hours: calculate and reconcile commissions.",
    ),
    Job(
        "audit_report_generation",
        "0 0 * * 0",
        deals.GENERATE_AUDIT_REPORT,
        "Weekly, Sundays 00:00: a comprehensive audit report of the last 7 days.",
        {"report_type": "comprehensive", "days": 7},
    ),
    Job(
        "overdue_detection",
        "0 1 * * *",
        deals.DETECT_OVERDUE_DEALS,
        "Daily at 01:00: find deals past due and unpaid.",
    ),
    # The seed's process names; their events keep the types the services subscribe to.
    Job(
        "system_cleanup",
        "0 * * * *",
        schedule.SESSION_CLEANUP,
        "Hourly: each service drops expired sessions, tokens and old logs.",
    ),
    Job(
        "health_monitoring",
        "*/5 * * * *",
        schedule.SYSTEM_HEALTH_CHECK,
        "Every 5 minutes: each service checks its health.",
    ),
    Job(
        "task_monitoring",
        "*/10 * * * *",
        schedule.TASK_MONITORING,
        "Every 10 minutes: look for stuck or overdue tasks.",
    ),
    Job(
        "failed_task_cleanup",
        "0 * * * *",
        schedule.FAILED_TASK_CLEANUP,
        "Hourly: purge failed-task records past their retention.",
    ),
)


RENAMED: Mapping[str, str] = {
    "session_cleanup": "system_cleanup",
    "system_health_check": "health_monitoring",
}
"""Earlier names of jobs, still understood in the environment and in ``schedule.run_now``."""


def current_name(name: str) -> str:
    return RENAMED.get(name, name)


def seeds(
    disabled: Collection[str] = (),
    crons: Mapping[str, str] | None = None,
    table: tuple[Job, ...] = JOBS,
) -> dict[str, tuple[str, bool]]:
    """Job → (cron, enabled) for a first start: the table with the environment's changes;
    unknown names and invalid cron expressions refused."""
    disabled = {current_name(name) for name in disabled}
    crons = {current_name(name): cron for name, cron in (crons or {}).items()}
    known = {job.name for job in table}
    unknown = sorted((disabled | set(crons)) - known)
    if unknown:
        raise ValueError(f"unknown scheduler jobs {unknown}; known: {sorted(known)}")
    bad = sorted(name for name, cron in crons.items() if not is_valid(cron))
    if bad:
        raise ValueError(f"invalid cron expressions for {bad}")
    return {job.name: (crons.get(job.name, job.cron), job.name not in disabled) for job in table}


def run_message_id(job: str, scheduled_for: datetime) -> uuid.UUID:
    return uuid.uuid5(RUN_ID_NAMESPACE, f"{job}@{scheduled_for.isoformat()}")


def envelope_for(
    job: Job, scheduled_for: datetime, *, now: datetime, caused_by: Envelope | None = None
) -> Envelope:
    """The message of one run: commands get a fresh task id; all organizations, medium priority.

    A run an operator asked for continues the journey of the request (``caused_by``).
    """
    journey: dict[str, Any] = {}
    if caused_by is not None:
        journey = {"correlation_id": caused_by.correlation_id, "causation_id": caused_by.id}
    return Envelope(
        id=run_message_id(job.name, scheduled_for),
        type=job.message.type,
        occurred_at=now,
        task_id=uuid.uuid4() if job.message.kind == "command" else None,
        priority=Priority.MEDIUM,
        organization_id=None,
        payload=job.payload(scheduled_for).model_dump(mode="json"),
        **journey,
    )
