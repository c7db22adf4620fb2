"""``webhook.register``: an organization's endpoint for chosen deal events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notifier import webhook_service
from notifier.adapters.webhook_client import EndpointPolicy, EndpointUnreachable, UnsafeEndpoint
from prs_shared.messaging.errors import PermanentError
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.webhooks import RegisterWebhook

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class WebhookDeps:
    policy: EndpointPolicy
    clock: Clock


async def handle_register_webhook(
    payload: RegisterWebhook, ctx: HandlerContext, deps: WebhookDeps
) -> dict[str, Any]:
    organization_id = ctx.envelope.organization_id
    if organization_id is None:
        raise PermanentError("webhook.register needs the envelope's organization_id")
    try:
        # Checked now so a bad URL is refused to whoever registers it; checked again on every
        # delivery, because what a name resolves to can change.
        await deps.policy.vet(payload.url)
    except (UnsafeEndpoint, EndpointUnreachable) as exc:
        raise PermanentError(f"webhook endpoint refused: {exc}") from exc
    endpoint, created = await webhook_service.register(
        ctx.session, organization_id, payload, deps.clock()
    )
    return {
        "endpoint_id": endpoint.id,
        "organization_id": organization_id,
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "active": endpoint.active,
        "created": created,
    }
