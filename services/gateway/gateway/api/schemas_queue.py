"""Bodies of the seed's queuing endpoints (field names as the seed has them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from prs_shared.messaging.common import Identifier
from prs_shared.messaging.deals import ReportType, WorkflowAction
from prs_shared.messaging.envelope import Priority
from prs_shared.messaging.files import FileType
from prs_shared.messaging.notifications import NotificationType
from prs_shared.messaging.prs_events import UserRole


class QueueDealProcessing(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"deal_id": "123", "workflow_action": "verify_deal", "priority": "high"}]
        },
    )

    deal_id: Identifier
    workflow_action: WorkflowAction
    priority: Priority = Priority.MEDIUM
    user_id: Identifier | None = Field(default=None, description="Who asked, for the audit log.")
    organization_id: Identifier | None = Field(
        default=None, description="Only for keys not scoped to one organization."
    )


class QueueFileProcessingJson(BaseModel):
    """The seed's JSON form: a file already in the upload directory."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "file_type": "profile_picture",
                    "file_path": "incoming/upload.jpg",
                    "original_filename": "profile.jpg",
                    "priority": "medium",
                }
            ]
        },
    )

    file_type: FileType
    file_path: str = Field(
        min_length=1,
        max_length=500,
        description="Inside PRS_UPLOAD_DIR: relative to it, or absolute but within it.",
    )
    original_filename: str = Field(min_length=1, max_length=255)
    priority: Priority = Priority.MEDIUM
    user_id: Identifier | None = None
    deal_id: Identifier | None = None
    organization_id: Identifier | None = None


class SendNotificationRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "notification_type": "password_expiry_warning",
                    "recipient_type": "user",
                    "user_id": 123,
                    "additional_data": {"days_until_expiry": 7},
                }
            ]
        },
    )

    notification_type: NotificationType
    recipient_type: Literal["user", "role", "email"] = "user"
    user_id: Identifier | None = None
    role: UserRole | None = Field(default=None, description="For recipient_type=role.")
    email: EmailStr | None = Field(default=None, description="For recipient_type=email (admins).")
    deal_id: Identifier | None = None
    additional_data: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = Priority.MEDIUM
    organization_id: Identifier | None = None


class GenerateAuditReportRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"report_type": "comprehensive", "days": 30}]},
    )

    report_type: ReportType = "comprehensive"
    days: int = Field(default=30, ge=1, le=3650)
    organization_id: Identifier | None = None
    priority: Priority = Priority.LOW


class TriggerProcessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organization_id: Identifier | None = None
