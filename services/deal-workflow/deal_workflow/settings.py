"""Deal-workflow configuration (``PRS_*`` environment variables)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from prs_shared.settings import ServiceSettings


class DealWorkflowSettings(ServiceSettings):
    service_name: ClassVar[str] = "deal-workflow"
    database_url: str | None = Field(
        default=None, validation_alias="PRS_DEAL_WORKFLOW_DATABASE_URL"
    )
    metrics_port: int = Field(
        default=9101, ge=0, le=65535, validation_alias="PRS_DEAL_WORKFLOW_METRICS_PORT"
    )
    # Its handlers are short database work: a transaction per batch of deliveries instead of per
    # message cuts the worker's cost per task about threefold (see make bench).
    batch_size: int = Field(
        default=32, ge=1, le=1000, validation_alias="PRS_DEAL_WORKFLOW_BATCH_SIZE"
    )
