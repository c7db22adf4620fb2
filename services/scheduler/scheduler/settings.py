"""Scheduler configuration (``PRS_*`` environment variables)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from prs_shared.settings import ServiceSettings
from scheduler.jobs import seeds


class SchedulerSettings(ServiceSettings):
    service_name: ClassVar[str] = "scheduler"
    database_url: str | None = Field(default=None, validation_alias="PRS_SCHEDULER_DATABASE_URL")
    metrics_port: int = Field(
        default=9104, ge=0, le=65535, validation_alias="PRS_SCHEDULER_METRICS_PORT"
    )
    tick_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        validation_alias="PRS_SCHEDULER_TICK_SECONDS",
        description="How often the leader looks for due jobs.",
    )
    lease_seconds: float = Field(
        default=15.0,
        ge=1,
        validation_alias="PRS_SCHEDULER_LEASE_SECONDS",
        description="Leader lease TTL; renewed every third of it. A standby takes over within it.",
    )
    disabled_jobs: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(),
        validation_alias="PRS_SCHEDULER_DISABLED_JOBS",
        description="Comma-separated jobs seeded disabled, e.g. system_cleanup,task_monitoring. "
        "Only seeds: once a schedule is in the database, it is changed there.",
    )
    job_crons: dict[str, str] = Field(
        default_factory=dict,
        validation_alias="PRS_SCHEDULER_JOB_CRONS",
        description="JSON object of job → cron expression seeded instead of the table's, e.g. "
        '{"overdue_detection": "0 2 * * *"}. Only seeds, like PRS_SCHEDULER_DISABLED_JOBS.',
    )

    @field_validator("disabled_jobs", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(name.strip() for name in value.split(",") if name.strip())
        return value

    @model_validator(mode="after")
    def _known_jobs(self) -> SchedulerSettings:
        self.seeds()
        return self

    def seeds(self) -> dict[str, tuple[str, bool]]:
        """Job → (cron, enabled) for schedules not in the database yet."""
        return seeds(self.disabled_jobs, self.job_crons)
