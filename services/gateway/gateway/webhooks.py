"""The webhooks an organization has registered, as the gateway knows them.

The notifier owns the endpoints table; no service reads another's tables. What the gateway has
is the registry: every ``webhook.register`` task, and the notifier's answer to it (endpoint id,
URL, event types, active) which reaches the registry in the task's ``task.succeeded`` event. So
the list is a fold of those results — the latest successful registration per (organization,
URL), as the notifier's own upsert keeps one endpoint per pair — and needs no table of its own.
The task's payload (with the secret) is never read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import Task
from prs_shared.messaging.messages import TaskStatus
from prs_shared.messaging.webhooks import REGISTER_WEBHOOK


@dataclass(frozen=True)
class RegisteredWebhook:
    endpoint_id: str
    organization_id: str
    url: str
    event_types: list[str]
    active: bool
    registered_at: datetime
    task_id: str


async def registered_webhooks(
    session: AsyncSession, organization_id: str | None
) -> list[RegisteredWebhook]:
    """Every endpoint's latest registration, ``organization_id``'s only when not None; by
    organization, then URL."""
    scope = [] if organization_id is None else [Task.organization_id == organization_id]
    tasks = await session.scalars(
        select(Task)
        .where(
            Task.task_type == REGISTER_WEBHOOK.type,
            Task.status == TaskStatus.SUCCEEDED.value,
            *scope,
        )
        .order_by(Task.finished_at.desc(), Task.task_id)
    )
    latest: dict[tuple[str, str], RegisteredWebhook] = {}
    for task in tasks:
        hook = _from_result(task)
        if hook is not None:
            latest.setdefault((hook.organization_id, hook.url), hook)
    return [latest[k] for k in sorted(latest)]


def _from_result(task: Task) -> RegisteredWebhook | None:
    result = task.result or {}
    url, endpoint_id = result.get("url"), result.get("endpoint_id")
    organization_id = result.get("organization_id") or task.organization_id
    if not (isinstance(url, str) and isinstance(endpoint_id, str) and organization_id):
        return None  # not an answer of the notifier's handler: nothing to show
    event_types = result.get("event_types")
    return RegisteredWebhook(
        endpoint_id=endpoint_id,
        organization_id=str(organization_id),
        url=url,
        event_types=[str(e) for e in event_types] if isinstance(event_types, list) else [],
        active=bool(result.get("active", True)),
        registered_at=task.finished_at or task.updated_at,
        task_id=task.task_id,
    )
