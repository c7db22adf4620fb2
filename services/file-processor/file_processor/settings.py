"""File-processor configuration (``PRS_*`` environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from prs_shared.settings import ServiceSettings


class FileProcessorSettings(ServiceSettings):
    service_name: ClassVar[str] = "file-processor"
    database_url: str | None = Field(
        default=None, validation_alias="PRS_FILE_PROCESSOR_DATABASE_URL"
    )
    metrics_port: int = Field(
        default=9102, ge=0, le=65535, validation_alias="PRS_FILE_PROCESSOR_METRICS_PORT"
    )
