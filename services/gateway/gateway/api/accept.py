"""Turning a validated request into a durable, queued task and its 202 answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Request
from pydantic import BaseModel

from gateway.api.openapi import PROBLEM_CONTENT
from gateway.api.problems import Problem
from gateway.api.schemas import QueuedResponse
from gateway.api.unavailable import RETRY_AFTER_SECONDS
from gateway.auth import Principal
from gateway.idempotency import HEADER, EarlierTask, find, fingerprint, key_row
from gateway.queueing import QueuedTask, build_task
from gateway.state import GatewayState
from prs_shared.messaging.envelope import Priority, utcnow
from prs_shared.messaging.messages import TaskStatus

ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "Queued: the task and its command are committed; follow status_url."},
    401: {"description": "No or unknown API key."},
    403: {"description": "The key's role or organization does not allow this."},
    413: {"description": "The body is larger than PRS_MAX_JSON_BYTES."},
    422: {
        "description": "Invalid body, or an Idempotency-Key already used for a different "
        "request; the problem names the fields."
    },
    429: {"description": "Queuing rate limit reached; see Retry-After."},
    503: {
        "description": "The broker did not confirm the command; nothing was queued.",
        "content": PROBLEM_CONTENT,
    },
}


def status_url(request: Request, task_id: UUID) -> str:
    """Where to follow a task; formatted directly (router reverse lookup is slow per request)."""
    return f"{str(request.base_url).rstrip('/')}/api/background-tasks/{task_id}/status/"


def queued_response(request: Request, task: QueuedTask) -> QueuedResponse:
    """The 202 answer for a task just queued."""
    return QueuedResponse(
        task_id=task.task_id,
        status=task.status,
        queue=task.queue,
        status_url=status_url(request, task.task_id),
    )


async def _idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Send the same key again (within 24 h, with the same request) and the "
            "first task answers instead of a new one; the key is the API key's own.",
        ),
    ] = None,
) -> str | None:
    return key


IDEMPOTENT = Depends(_idempotency_key)
"""Declares and validates the header on a queuing route; ``accept`` reads it."""


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
    fingerprint_ignores: frozenset[str] = frozenset(),
    discard: Callable[[], None] | None = None,
) -> QueuedResponse:
    """Record the task and its command durably (group-committed), then answer.

    With an ``Idempotency-Key``, a request seen before answers with the task it created.
    ``fingerprint_ignores`` names payload fields that differ between identical requests (where
    an upload was stored); ``discard`` undoes the request's own side effects when it creates
    no task.
    """
    task, row, rows = build_task(
        state.host.topology,
        type_=type_,
        payload=payload,
        priority=priority,
        organization_id=organization_id,
        queued_by=principal.name,
        queue=queue,
    )
    key = request.headers.get(HEADER)
    key_record: dict[str, Any] | None = None
    if key is not None:
        asked = fingerprint(
            type=type_,
            payload={k: v for k, v in row["payload"].items() if k not in fingerprint_ignores},
            priority=priority.value,
            organization_id=organization_id,
            queue=task.queue,
        )
        now = utcnow()
        earlier = await find(state.host.sessions, principal.key_id, key, now)
        if earlier is not None:
            return _replay(request, earlier, asked, discard)
        key_record = key_row(principal.key_id, key, asked, row["task_id"], now)
    try:
        await state.acceptor.submit(row, rows, key_record)
    except RuntimeError as exc:
        if key is not None and key_record is not None:
            # Most likely an identical request committed the key first: answer with its task.
            earlier = await find(state.host.sessions, principal.key_id, key, utcnow())
            if earlier is not None:
                return _replay(request, earlier, key_record["fingerprint"], discard)
        if discard is not None:
            discard()
        raise Problem(
            503,
            "Not queued",
            f"{exc}; nothing was queued, try again",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from exc
    return queued_response(request, task)


def _replay(
    request: Request, earlier: EarlierTask, asked: str, discard: Callable[[], None] | None
) -> QueuedResponse:
    if discard is not None:
        discard()
    if earlier.fingerprint != asked:
        message = "already used for a different request; send a new key for a new task"
        raise Problem(
            422,
            "Idempotency-Key reused",
            f"{HEADER} {message}",
            errors=[{"field": HEADER, "message": message, "type": "idempotency_key_reused"}],
        )
    task_id = UUID(earlier.task_id)
    return QueuedResponse(
        task_id=task_id,
        status=TaskStatus(earlier.status),
        queue=earlier.queue,
        status_url=status_url(request, task_id),
    )
