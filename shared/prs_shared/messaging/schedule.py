"""Timed events the scheduler publishes, and the command that runs a scheduled job at once.

The business processes the scheduler starts (reminders, commissions, audit reports, overdue
detection) are ordinary commands of :mod:`prs_shared.messaging.deals`. The housekeeping jobs below
have no single owner: each service cleans up and reports on itself when their event arrives.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints

from prs_shared.messaging import catalog
from prs_shared.messaging.common import BigCount
from prs_shared.messaging.messages import Message

JobName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")]
"""A job of the scheduler's table, e.g. ``system_cleanup``."""


class ScheduleTick(Message):
    """A scheduled time of a job has come (``schedule.<tick>``; ``job`` names the job)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"job": "health_monitoring", "scheduled_for": "2026-03-01T00:05:00Z"}]
        }
    )

    job: JobName
    scheduled_for: AwareDatetime = Field(
        description="The time the schedule named (UTC); a caught-up or manual run is later."
    )


class RunJobNow(Message):
    """Run one job of the scheduler's table now, outside its schedule (an operator's request)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"job": "commission_calculation"}]})

    job: JobName
    requested_by: str = Field(
        default="", max_length=200, description="Who asked, for the scheduler's audit log."
    )


SESSION_CLEANUP = catalog.event(
    "schedule.session_cleanup",
    ScheduleTick,
    "Time for each service to drop expired sessions.",
    # The system cleanup rides on it: a pass over every store past retention.
    time_limit=(240, 300),
)
SYSTEM_HEALTH_CHECK = catalog.event(
    "schedule.system_health_check", ScheduleTick, "Time for each service to check its health."
)
TASK_MONITORING = catalog.event(
    "schedule.task_monitoring", ScheduleTick, "Time to look for stuck or overdue tasks."
)
FAILED_TASK_CLEANUP = catalog.event(
    "schedule.failed_task_cleanup",
    ScheduleTick,
    "Time to purge failed-task records past their retention.",
    time_limit=(240, 300),
)
RUN_JOB_NOW = catalog.command(
    "schedule.run_now",
    RunJobNow,
    "system",
    "Run a scheduled job at once, through the same path as its schedule (recorded as manual).",
    time_limit=(10, 15),
)


class UpdateSchedule(Message):
    """Change one schedule of the scheduler's table at run time (an operator's request)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"job": "overdue_detection", "cron": "0 2 * * *", "requested_by": "ops"},
                {"job": "task_monitoring", "enabled": False, "requested_by": "ops"},
            ]
        }
    )

    job: JobName
    enabled: bool | None = Field(default=None, description="Switch the timer on or off.")
    cron: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        default=None, description="A new cron expression (UTC, five fields)."
    )
    requested_by: str = Field(
        default="", max_length=200, description="Who asked, for the scheduler's audit log."
    )


class ScheduleState(Message):
    """What the scheduler holds about one schedule, after a change or a run.

    ``revision`` grows with every change and every run: a replica keeps the highest it has seen,
    so copies and reordered deliveries are harmless.
    """

    job: JobName
    cron: str = Field(max_length=100, description="Cron expression, UTC.")
    enabled: bool
    description: str = Field(max_length=500)
    message_type: str = Field(max_length=200, description="What each run sends.")
    message_kind: str = Field(max_length=10, description="command (a task) or event.")
    revision: BigCount
    changed_at: AwareDatetime = Field(description="Last change of cron or enabled flag.")
    changed_by: str = Field(max_length=200, description="Who made it: `environment` for a seed.")
    last_run_at: AwareDatetime | None = Field(
        default=None, description="Scheduled time of the latest run, scheduled or manual."
    )
    last_run_source: str | None = Field(default=None, max_length=10)
    last_run_task_id: str | None = Field(default=None, max_length=36)


UPDATE_SCHEDULE = catalog.command(
    "schedule.update",
    UpdateSchedule,
    "system",
    "Enable, disable or re-time a scheduled job; takes effect at the scheduler's next tick.",
    time_limit=(10, 15),
)
SCHEDULE_CHANGED = catalog.event(
    "scheduler.schedule_changed",
    ScheduleState,
    "A schedule was seeded, changed or run: its current definition and latest run.",
)
