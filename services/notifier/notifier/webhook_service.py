"""Webhook endpoints and the deliveries an event creates for them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.models import WebhookDelivery, WebhookEndpoint
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.webhooks import RegisterWebhook

DELIVERY_NAMESPACE = uuid.UUID("7d0c2f7a-1b1e-4f55-9f0e-3b0b8c7a5d11")
PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


def delivery_id(event_id: str, endpoint_id: str) -> str:
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}/{endpoint_id}"))


def delivery_body(delivery: str, envelope: Envelope, organization_id: str) -> str:
    """The JSON a receiver gets; stored as sent, so every retry signs the very same bytes."""
    document = {
        "id": delivery,
        "event_id": str(envelope.id),
        "type": envelope.type,
        "occurred_at": envelope.occurred_at.isoformat(),
        "organization_id": organization_id,
        "data": envelope.payload,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True, default=str)


async def stage_deliveries(
    session: AsyncSession, envelope: Envelope, organization_id: str, now: datetime
) -> int:
    """One pending delivery per active endpoint of the organization subscribed to the event."""
    endpoints = (
        await session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.organization_id == organization_id, WebhookEndpoint.active
            )
        )
    ).all()
    staged = 0
    for endpoint in endpoints:
        if envelope.type not in endpoint.event_types:
            continue
        identifier = delivery_id(str(envelope.id), endpoint.id)
        session.add(
            WebhookDelivery(
                id=identifier,
                endpoint_id=endpoint.id,
                organization_id=organization_id,
                event_id=str(envelope.id),
                event_type=envelope.type,
                body=delivery_body(identifier, envelope, organization_id),
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        staged += 1
    return staged


async def register(
    session: AsyncSession, organization_id: str, request: RegisterWebhook, now: datetime
) -> tuple[WebhookEndpoint, bool]:
    """Create or replace the organization's endpoint for the URL; (endpoint, created)."""
    endpoint = await session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.organization_id == organization_id,
            WebhookEndpoint.url == request.url,
        )
    )
    created = endpoint is None
    if endpoint is None:
        endpoint = WebhookEndpoint(
            id=str(uuid.uuid4()), organization_id=organization_id, url=request.url, created_at=now
        )
        session.add(endpoint)
    endpoint.event_types = sorted(set(request.event_types))
    endpoint.secret = request.secret
    endpoint.active = request.active
    endpoint.updated_at = now
    return endpoint, created
