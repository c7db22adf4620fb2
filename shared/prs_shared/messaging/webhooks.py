"""Webhook registrations: organizations ask to be told about deal events over HTTPS."""

from __future__ import annotations

from typing import Literal, get_args
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator

from prs_shared.messaging import catalog
from prs_shared.messaging.messages import Message

WebhookEventType = Literal[
    "deal.verified",
    "deal.rejected",
    "deal.payment_status_changed",
    "deal.overdue",
    "deal.verification_reminder_due",
    "report.audit.generated",
]
"""The event types an organization's endpoint may subscribe to."""

WEBHOOK_EVENT_TYPES: tuple[str, ...] = get_args(WebhookEventType)


class RegisterWebhook(Message):
    """Register (or update) an endpoint of the envelope's organization.

    The pair (organization, url) identifies an endpoint: registering the same URL again replaces
    its event types, secret and state. Deliveries are JSON, signed with HMAC-SHA256 over
    ``<timestamp>.<body>`` with ``secret`` (headers ``X-PRS-Timestamp`` and
    ``X-PRS-Signature: v1=<hex>``).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.com/prs",
                    "event_types": ["deal.verified", "deal.rejected"],
                    "secret": "whsec-3f9a0c1e5b7d2f4a6c8e0b1d3f5a7c9e",
                    "active": True,
                }
            ]
        }
    )

    url: str = Field(
        min_length=8,
        max_length=2048,
        description="HTTPS URL of the endpoint; hosts resolving to private addresses are refused.",
    )
    event_types: list[WebhookEventType] = Field(
        min_length=1, max_length=50, description="Which events the endpoint receives."
    )
    secret: str = Field(
        min_length=24, max_length=256, description="Shared secret that signs every delivery."
    )
    active: bool = Field(default=True, description="False stops deliveries to the endpoint.")

    @field_validator("url")
    @classmethod
    def _http_url_with_a_host(cls, value: str) -> str:
        # Refused here, so the caller hears of a mistyped URL as a 422 naming the field instead
        # of finding its registration dead-lettered later.
        if any(c.isspace() or ord(c) < 32 for c in value):
            raise ValueError("the URL must not contain spaces or control characters")
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError("the URL needs an http or https scheme")
        if not parts.hostname:
            raise ValueError("the URL needs a host")
        return value


REGISTER_WEBHOOK = catalog.command(
    "webhook.register",
    RegisterWebhook,
    "notifications",
    "Register or update a webhook endpoint of an organization for chosen deal events.",
    time_limit=(15, 30),
)
