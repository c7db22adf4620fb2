"""Notifier configuration (``PRS_*`` environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from prs_shared.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    service_name: ClassVar[str] = "notifier"
    database_url: str | None = Field(default=None, validation_alias="PRS_NOTIFIER_DATABASE_URL")
    metrics_port: int = Field(
        default=9103, ge=0, le=65535, validation_alias="PRS_NOTIFIER_METRICS_PORT"
    )
