"""Scheduler configuration (``PRS_*`` environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from prs_shared.settings import ServiceSettings


class SchedulerSettings(ServiceSettings):
    service_name: ClassVar[str] = "scheduler"
    database_url: str | None = Field(default=None, validation_alias="PRS_SCHEDULER_DATABASE_URL")
    metrics_port: int = Field(
        default=9104, ge=0, le=65535, validation_alias="PRS_SCHEDULER_METRICS_PORT"
    )
