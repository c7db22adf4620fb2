"""Timed events the scheduler publishes, and the command that runs a scheduled job at once.

The business processes the scheduler starts (reminders, commissions, audit reports, overdue
detection) are ordinary commands of :mod:`prs_shared.messaging.deals`. The housekeeping jobs below
have no single owner: each service cleans up and reports on itself when their event arrives.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints

from prs_shared.messaging import catalog
from prs_shared.messaging.messages import Message

JobName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")]
"""A job of the scheduler's table, e.g. ``session_cleanup``."""


class ScheduleTick(Message):
    """A scheduled time of a job has come; the event's type names the job (``schedule.<job>``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"job": "system_health_check", "scheduled_for": "2026-03-01T00:05:00Z"}]
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


SESSION_CLEANUP = catalog.event(
    "schedule.session_cleanup", ScheduleTick, "Time for each service to drop expired sessions."
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
)
RUN_JOB_NOW = catalog.command(
    "schedule.run_now",
    RunJobNow,
    "system",
    "Run a scheduled job at once, through the same path as its schedule (recorded as manual).",
)
