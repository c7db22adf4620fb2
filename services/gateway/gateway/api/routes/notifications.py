"""The notification log: what the notifier reports it emailed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from gateway.api.deps import CurrentPrincipal, SessionDep
from gateway.models import SentNotification
from prs_shared.messaging.notifications import NotificationType

router = APIRouter(prefix="/api", tags=["notifications"])


class NotificationEntry(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "3c1d2e4f-0000-4000-8000-000000000001",
                    "organization_id": "42",
                    "notification_type": "verification_approved",
                    "recipients": ["sales@example.com"],
                    "status": "sent",
                    "message_id": "<0b6c8f0e.verification_approved@prs.localhost>",
                    "error": None,
                    "at": "2026-11-28T12:00:00Z",
                }
            ]
        }
    )

    event_id: str
    organization_id: str | None
    notification_type: str
    recipients: list[str]
    status: Literal["sent", "failed"]
    message_id: str
    error: str | None
    at: datetime


class NotificationPage(BaseModel):
    items: list[NotificationEntry]
    total: int = Field(description="Entries matching the filters.")


@router.get("/notifications/")
async def notification_log(
    session: SessionDep,
    principal: CurrentPrincipal,
    status_: Annotated[Literal["sent", "failed"] | None, Query(alias="status")] = None,
    notification_type: NotificationType | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> NotificationPage:
    """What was emailed (type, recipients, status, time, Message-ID), newest first."""
    conditions = []
    if principal.organization_id is not None:
        conditions.append(SentNotification.organization_id == principal.organization_id)
    if status_ is not None:
        conditions.append(SentNotification.status == status_)
    if notification_type is not None:
        conditions.append(SentNotification.notification_type == notification_type.value)
    total = await session.scalar(
        select(func.count()).select_from(SentNotification).where(*conditions)
    )
    rows = (
        await session.execute(
            select(SentNotification)
            .where(*conditions)
            .order_by(SentNotification.at.desc(), SentNotification.event_id)
            .limit(limit)
            .offset(offset)
        )
    ).scalars()
    return NotificationPage(
        items=[
            NotificationEntry(
                event_id=r.event_id,
                organization_id=r.organization_id,
                notification_type=r.notification_type,
                recipients=r.recipients,
                status="sent" if r.status == "sent" else "failed",
                message_id=r.message_id,
                error=r.error,
                at=r.at,
            )
            for r in rows
        ],
        total=int(total or 0),
    )
