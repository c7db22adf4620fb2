"""The plan of the hourly system cleanup, asked of every service.

Each service owns part of what the cleanup removes (the gateway its registry, the file-processor
the uploads, every service its inbox ids), so only it can say what its part would remove now.
``housekeeping.cleanup_plan`` is a command every service answers, on its own queue, with a
:class:`ServicePlan`: for each kind of thing it deletes, the rows, bytes and files a run at that
moment would remove. Planning deletes nothing; it reads the same rows, in the same order and
within the same batch bounds, as the run.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from prs_shared.messaging import catalog
from prs_shared.messaging.messages import Message


class CleanupPlanRequest(Message):
    """Say what this service's part of the system cleanup would remove at ``at`` (now if unset)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{}]})

    at: AwareDatetime | None = Field(
        default=None, description="The time retention is measured from; the handling time if unset."
    )


class PlannedSweep(BaseModel):
    """One kind of thing a service deletes past its retention, and how much a run would take."""

    model_config = ConfigDict(frozen=True)

    job: str = Field(description="The scheduled job that removes it, e.g. system_cleanup.")
    kind: str = Field(description="What is deleted, e.g. uploads, inbox_ids, failed_tasks.")
    description: str
    retention_seconds: float
    cutoff: datetime = Field(description="Anything older than this is past retention.")
    rows: int = Field(description="Rows a run now would remove.")
    bytes: int = Field(description="Bytes those rows store.")
    files: int = Field(default=0, description="Files removed with them.")
    file_bytes: int = Field(default=0, description="Bytes of those files.")
    left: int = Field(default=0, description="Past retention but beyond a run's batch bound.")


class ServicePlan(BaseModel):
    """A service's answer to ``housekeeping.cleanup_plan``."""

    model_config = ConfigDict(frozen=True)

    service: str
    worker: str
    at: datetime
    sweeps: list[PlannedSweep]


CLEANUP_PLAN = catalog.command(
    "housekeeping.cleanup_plan",
    CleanupPlanRequest,
    "system",
    "What a service's part of the system cleanup would remove now; removes nothing.",
    max_retries=0,
    time_limit=(20, 30),
)
