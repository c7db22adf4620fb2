"""The JSON envelope every message travels in (DESIGN.md §2)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from prs_shared.messaging.common import MessagePayload


class Priority(enum.StrEnum):
    """Task priority; a high task overtakes a backlog of low ones."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def amqp(self) -> int:
        """The AMQP priority (1-3); 4 is reserved for control commands."""
        return {Priority.HIGH: 3, Priority.MEDIUM: 2, Priority.LOW: 1}[self]


MessageKind = Literal["command", "event"]

CONTROL_PRIORITY = 4
"""Above every task priority: control commands (cancellations) overtake waiting tasks."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Metadata plus a payload whose schema the ``type`` names in the catalog."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    id: UUID = Field(default_factory=uuid4, description="Unique per message; the inbox key.")
    type: str = Field(min_length=1, max_length=200, description="Catalog name, e.g. deal.verified")
    version: int = Field(default=1, ge=1, le=1000, description="Schema version of the payload.")
    occurred_at: AwareDatetime = Field(default_factory=utcnow, description="UTC time of the fact.")
    correlation_id: UUID = Field(default_factory=uuid4, description="Shared by one whole journey.")
    causation_id: UUID | None = Field(default=None, description="Id of the message that caused it.")
    organization_id: str | None = Field(default=None, max_length=200)
    task_id: UUID | None = Field(default=None, description="Set on commands that are tasks.")
    priority: Priority = Priority.MEDIUM
    payload: MessagePayload = Field(default_factory=dict)

    def caused(self, type_: str, payload: BaseModel | dict[str, Any], **overrides: Any) -> Envelope:
        """A new message caused by this one: same correlation and organization."""
        data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
        fields: dict[str, Any] = {
            "type": type_,
            "payload": data,
            "correlation_id": self.correlation_id,
            "causation_id": self.id,
            "organization_id": self.organization_id,
        }
        fields.update(overrides)
        return Envelope(**fields)
