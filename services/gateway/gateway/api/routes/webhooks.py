"""Webhooks: register an organization's endpoint (a task for the notifier) and list them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.accept import ACCEPTED, IDEMPOTENT, accept
from gateway.api.deps import (
    CurrentPrincipal,
    QueuingPrincipal,
    SessionDep,
    StateDep,
    effective_organization,
    require,
)
from gateway.api.problems import invalid
from gateway.api.schemas import QueuedResponse
from gateway.auth import Role
from gateway.webhooks import registered_webhooks
from prs_shared.messaging.common import Identifier
from prs_shared.messaging.envelope import Priority
from prs_shared.messaging.webhooks import REGISTER_WEBHOOK, RegisterWebhook

router = APIRouter(prefix="/api/webhooks", tags=["notifications"])


class RegisterWebhookRequest(RegisterWebhook):
    model_config = ConfigDict(extra="forbid")

    organization_id: Identifier | None = Field(
        default=None, description="Only for keys not scoped to one organization."
    )


class WebhookView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "endpoint_id": "5e0c7b1a-0000-4000-8000-000000000001",
                    "organization_id": "42",
                    "url": "https://hooks.example.com/prs",
                    "event_types": ["deal.verified", "deal.rejected"],
                    "active": True,
                    "registered_at": "2026-11-28T12:00:00Z",
                    "task_id": "6f1c1c2e-8a9e-4d5b-9f6e-0c8a3f1d2b7a",
                }
            ]
        }
    )

    endpoint_id: str = Field(description="The notifier's id of the endpoint.")
    organization_id: str
    url: str
    event_types: list[str]
    active: bool = Field(description="False: registered, but deliveries are stopped.")
    registered_at: datetime = Field(description="When its latest registration took effect.")
    task_id: str = Field(description="The task of that registration.")


class WebhookPage(BaseModel):
    items: list[WebhookView]
    total: int


@router.post(
    "/",
    status_code=status.HTTP_202_ACCEPTED,
    responses=ACCEPTED,
    dependencies=[require(Role.OPERATOR), IDEMPOTENT],
)
async def register_webhook(
    body: RegisterWebhookRequest,
    request: Request,
    principal: QueuingPrincipal,
    state: StateDep,
) -> QueuedResponse:
    """Register (or update) an HTTPS endpoint of an organization for chosen deal events."""
    org = effective_organization(principal, body.organization_id)
    if org is None:
        raise invalid(
            [{"field": "organization_id", "message": "required: a webhook belongs to one"}]
        )
    payload = RegisterWebhook(
        url=body.url, event_types=body.event_types, secret=body.secret, active=body.active
    )
    return await accept(
        state=state,
        request=request,
        principal=principal,
        type_=REGISTER_WEBHOOK.type,
        payload=payload,
        priority=Priority.MEDIUM,
        organization_id=org,
    )


@router.get("/")
async def list_webhooks(
    session: SessionDep,
    principal: CurrentPrincipal,
    organization_id: Annotated[
        str | None,
        Query(max_length=200, description="Only for keys not scoped to one organization."),
    ] = None,
) -> WebhookPage:
    """Registered webhooks (their latest registration the notifier accepted); never secrets."""
    org = effective_organization(principal, organization_id)
    hooks = await registered_webhooks(session, org)
    return WebhookPage(
        items=[
            WebhookView(
                endpoint_id=h.endpoint_id,
                organization_id=h.organization_id,
                url=h.url,
                event_types=h.event_types,
                active=h.active,
                registered_at=h.registered_at,
                task_id=h.task_id,
            )
            for h in hooks
        ],
        total=len(hooks),
    )
