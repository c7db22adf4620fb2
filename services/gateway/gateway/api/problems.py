"""Errors as RFC 9457 problem details, one shape for every error the gateway returns."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.api.body_limit import BodyTooLarge
from gateway.api.unavailable import RETRY_AFTER_SECONDS, unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extra = extra


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "instance": request.url.path,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def describe(errors: list[dict[str, Any]]) -> str:
    """One line naming every invalid field and what is wrong with it."""
    parts = [f"{e['field'] or 'body'} ({e['message']})" for e in errors]
    return "invalid field(s): " + "; ".join(parts)


def field_errors(raw: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's errors as the problem's ``errors``: the field's dotted path and the message."""
    return [
        {
            "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
            "message": err.get("msg", "invalid"),
            "type": err.get("type", "value_error"),
        }
        for err in raw
    ]


def invalid(errors: list[dict[str, Any]]) -> Problem:
    """422 naming every invalid field."""
    return Problem(422, "Invalid request", describe(errors), errors=errors)


async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
    """The 413 problem, for the body-limit middleware and for a body found too large as read."""
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(request, 413, "Payload too large", exc.detail, headers)


_AWAY = {
    "database": ("Database unavailable", "the gateway's database cannot be reached"),
    "server": ("Service unavailable", "a server the gateway depends on cannot be reached"),
}
"""Title and detail of the 503 for what :func:`unavailable` found away."""


def install(app: FastAPI) -> None:
    """The gateway's error handling: every error a problem."""
    app.exception_handler(BodyTooLarge)(too_large)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            request, exc.status, exc.title, exc.detail, exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc.errors())
        return problem_response(request, 422, "Invalid request", describe(errors), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(request, exc.status_code, str(exc.detail), headers=headers)

    async def _away(request: Request, exc: Exception) -> JSONResponse:
        what = unavailable(exc)
        if what is None:
            return await _unexpected(request, exc)
        log.warning("%s: %s unavailable: %s: %s", request.url.path, what, type(exc).__name__, exc)
        title, detail = _AWAY[what]
        return problem_response(
            request,
            503,
            title,
            f"{detail}; try again (a queuing request repeated with its Idempotency-Key "
            "queues at most one task)",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    # Registered for these classes, not Exception: Starlette re-raises what reaches its
    # catch-all handler (after answering), and a server that is away is no fault to re-raise.
    for kind in (DBAPIError, PoolTimeout, OSError):
        app.exception_handler(kind)(_away)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(request, 500, "Internal error", "the error has been logged")
