"""Commands to the notifier and the events it publishes."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import Field, model_validator

from prs_shared.messaging import catalog
from prs_shared.messaging.common import Email, Identifier, JsonObject, LongStr, MailboxStr
from prs_shared.messaging.messages import Message
from prs_shared.messaging.prs_events import UserRole


class NotificationType(enum.StrEnum):
    PASSWORD_RESET = "password_reset"
    PASSWORD_CREATED = "password_created"
    PASSWORD_EXPIRY_WARNING = "password_expiry_warning"
    VERIFICATION_APPROVED = "verification_approved"
    VERIFICATION_REJECTED = "verification_rejected"
    PAYMENT_RECEIVED = "payment_received"
    DEAL_OVERDUE = "deal_overdue"
    VERIFICATION_REMINDER = "verification_reminder"
    AUDIT_REPORT_READY = "audit_report_ready"
    SYSTEM_UNHEALTHY = "system_unhealthy"
    SYSTEM_RECOVERED = "system_recovered"

    @property
    def is_password(self) -> bool:
        return self.value.startswith("password_")


class SendNotification(Message):
    """Email someone: a user by id, everyone with a role in an organization, an address, or the
    platform's operators (``operators``: the notifier's ``PRS_OPERATOR_EMAILS``, for messages
    of no organization only)."""

    notification_type: NotificationType
    recipient_type: Literal["user", "role", "email", "operators"] = "user"
    user_id: Identifier | None = None
    role: UserRole | None = None
    email: Email | None = None
    deal_id: Identifier | None = None
    additional_data: JsonObject = Field(default_factory=dict)

    @model_validator(mode="after")
    def _recipient_named(self) -> SendNotification:
        if self.recipient_type == "operators":
            return self  # the notifier knows them
        needed = {"user": self.user_id, "role": self.role, "email": self.email}[self.recipient_type]
        if needed is None:
            field = {"user": "user_id", "role": "role", "email": "email"}[self.recipient_type]
            raise ValueError(f"recipient_type {self.recipient_type!r} needs {field}")
        return self


class NotificationOutcome(Message):
    notification_type: NotificationType
    recipients: list[MailboxStr] = Field(max_length=1000)
    message_id: str = Field(max_length=300, description="The Message-ID header of the email.")
    error: LongStr | None = None


SEND_NOTIFICATION = catalog.command(
    "notification.send",
    SendNotification,
    "notifications",
    "Send an email notification (password notifications travel on the auth queue).",
    # One SMTP conversation; a server slower than this is better retried later.
    time_limit=(30, 45),
)
NOTIFICATION_SENT = catalog.event("notification.sent", NotificationOutcome, "An email was sent.")
NOTIFICATION_FAILED = catalog.event(
    "notification.failed", NotificationOutcome, "An email could not be sent."
)
