"""The client's errors: the gateway's problem+json answers as typed exceptions; task outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from prs_client.models import TaskStatusResponse


class PRSError(Exception):
    """Base of every error the client raises."""


@dataclass(frozen=True)
class FieldError:
    """One invalid field of a request, as the gateway names it (a dotted path)."""

    field: str
    message: str
    type: str | None = None


class ProblemError(PRSError):
    """The gateway answered with an RFC 9457 problem (``application/problem+json``)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}" + (f": {detail}" if detail else ""))
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.retry_after = retry_after
        self.body = body or {}


class BadRequest(ProblemError):
    """400 or 413/415: the request could not be read."""


class Unauthorized(ProblemError):
    """401: no API key, or one the gateway does not know."""


class Forbidden(ProblemError):
    """403: the key's role or organization does not allow this."""


class NotFound(ProblemError):
    """404: no such task, report or file (or not visible to this key)."""


class Conflict(ProblemError):
    """409: the task is in a state that does not allow this (cancel a running task)."""


class ValidationFailed(ProblemError):
    """422: invalid fields; ``errors`` names each one."""


class RateLimited(ProblemError):
    """429 after the client's retries: ``retry_after`` says when to try again."""


class ServiceUnavailable(ProblemError):
    """503 after the client's retries: nothing was queued."""


_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: BadRequest,
    415: BadRequest,
    422: ValidationFailed,
    429: RateLimited,
    503: ServiceUnavailable,
}


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header in seconds (the form the gateway sends)."""
    value = response.headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def problem_from(response: httpx.Response) -> ProblemError:
    """The typed exception for an error response (problem+json, or any other body)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"title": response.reason_phrase or "Error", "detail": response.text[:500] or None}
    errors = [
        FieldError(
            field=str(item.get("field", "")),
            message=str(item.get("message", "")),
            type=item.get("type"),
        )
        for item in body.get("errors") or []
        if isinstance(item, dict)
    ]
    cls = _BY_STATUS.get(response.status_code, ProblemError)
    return cls(
        response.status_code,
        str(body.get("title") or response.reason_phrase or "Error"),
        body.get("detail"),
        errors=errors,
        retry_after=retry_after(response),
        body=body,
    )


class TaskFailed(PRSError):
    """The task ended without succeeding (failed, dead-lettered, cancelled or expired)."""

    def __init__(self, task: TaskStatusResponse) -> None:
        reason = task.error or task.status.value
        super().__init__(f"task {task.task_id} ({task.task_type}) {task.status.value}: {reason}")
        self.task = task
        self.status = task.status
        self.reason = reason


class TaskTimeout(PRSError):
    """The task had not finished when ``wait`` gave up; ``task`` is its last status."""

    def __init__(self, task: TaskStatusResponse, timeout: float) -> None:
        super().__init__(
            f"task {task.task_id} still {task.status.value} after {timeout:g}s of waiting"
        )
        self.task = task
        self.timeout = timeout
