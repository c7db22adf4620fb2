"""Turning a validated request into a durable, queued task and its 202 answer."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import Request
from pydantic import BaseModel

from gateway.api.openapi import PROBLEM_CONTENT
from gateway.api.problems import Problem
from gateway.api.schemas import QueuedResponse
from gateway.auth import Principal
from gateway.queueing import build_task
from gateway.state import GatewayState
from prs_shared.messaging.envelope import Priority

ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "Queued: the task and its command are committed; follow status_url."},
    401: {"description": "No or unknown API key."},
    403: {"description": "The key's role or organization does not allow this."},
    413: {"description": "The body is larger than PRS_MAX_JSON_BYTES."},
    422: {"description": "Invalid body; the problem names the fields."},
    429: {"description": "Queuing rate limit reached; see Retry-After."},
    503: {
        "description": "The broker did not confirm the command; nothing was queued.",
        "content": PROBLEM_CONTENT,
    },
}


def status_url(request: Request, task_id: UUID) -> str:
    """Where to follow a task; formatted directly (router reverse lookup is slow per request)."""
    return f"{str(request.base_url).rstrip('/')}/api/background-tasks/{task_id}/status/"


async def accept(
    *,
    state: GatewayState,
    request: Request,
    principal: Principal,
    type_: str,
    payload: BaseModel,
    priority: Priority,
    organization_id: str | None,
    queue: str | None = None,
) -> QueuedResponse:
    """Record the task and its command durably (group-committed), then answer."""
    task, row, rows = build_task(
        state.host.topology,
        type_=type_,
        payload=payload,
        priority=priority,
        organization_id=organization_id,
        queued_by=principal.name,
        queue=queue,
    )
    try:
        await state.acceptor.submit(row, rows)
    except RuntimeError as exc:
        raise Problem(503, "Not queued", f"{exc}; nothing was queued, try again") from exc
    return QueuedResponse(
        task_id=task.task_id,
        status=task.status,
        queue=task.queue,
        status_url=status_url(request, task.task_id),
    )
