"""Turning a validated request into a durable, queued task and its 202 answer."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.schemas import QueuedResponse
from gateway.auth import Principal
from gateway.queueing import queue_task
from gateway.state import GatewayState
from prs_shared.messaging.envelope import Priority

ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "Queued: the task and its command are committed; follow status_url."},
    401: {"description": "No or unknown API key."},
    403: {"description": "The key's role or organization does not allow this."},
    422: {"description": "Invalid body; the problem names the fields."},
    429: {"description": "Queuing rate limit reached; see Retry-After."},
}


async def accept(
    *,
    state: GatewayState,
    session: AsyncSession,
    request: Request,
    principal: Principal,
    type_: str,
    payload: BaseModel,
    priority: Priority,
    organization_id: str | None,
    queue: str | None = None,
) -> QueuedResponse:
    """Record the task and stage its command in one transaction, then wake the relay."""
    async with session.begin():
        task = await queue_task(
            session,
            state.host.topology,
            type_=type_,
            payload=payload,
            priority=priority,
            organization_id=organization_id,
            queued_by=principal.name,
            queue=queue,
        )
    state.host.relay.notify()
    return QueuedResponse(
        task_id=task.task_id,
        status=task.status,
        queue=task.queue,
        status_url=str(request.url_for("get_task_status", task_id=task.task_id)),
    )
