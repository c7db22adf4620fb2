"""The OpenAPI document as the gateway really answers: every error a problem+json body.

FastAPI documents its own 422 shape (``HTTPValidationError``) and leaves declared error responses
without a body; the gateway answers every error with RFC 9457 problem details (``problems.py``).
This hook, run once when the document is first built, gives each 4xx response that body, and
adds the errors every authenticated operation can answer (401, 429 after repeated failed keys) and
every operation with a body (413).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.problems import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
PROBLEM_CONTENT: dict[str, Any] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
"""For a route's ``responses``: a 5xx that is a problem (the health reports' 503 are not)."""


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the invalid field ('' for the whole body).")
    message: str
    type: str | None = Field(
        default=None, description="pydantic's error type (e.g. 'missing'), when pydantic found it."
    )


class Problem(BaseModel):
    """RFC 9457 problem details; some problems add members of their own (e.g. ``known``)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "about:blank",
                    "title": "Invalid request",
                    "status": 422,
                    "instance": "/api/webhooks/",
                    "detail": "invalid field(s): url "
                    "(Value error, the URL needs an http or https scheme)",
                    "errors": [
                        {
                            "field": "url",
                            "message": "Value error, the URL needs an http or https scheme",
                            "type": "value_error",
                        }
                    ],
                }
            ]
        },
    )

    type: str = Field(default="about:blank")
    title: str
    status: int
    instance: str = Field(description="The request's path.")
    detail: str | None = None
    errors: list[FieldProblem] | None = Field(
        default=None, description="Every invalid field, when the problem is about fields."
    )


_AUTHENTICATED = {
    "401": "No or unknown API key.",
    "429": "Rate limit reached, or too many failed keys from this address; see Retry-After.",
}
_WITH_BODY = {"413": "The body is larger than the gateway accepts."}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def install(app: FastAPI) -> None:
    """Post-process ``app``'s OpenAPI document once, when it is first asked for."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            with_problems(build())
        document: dict[str, Any] = app.openapi_schema  # type: ignore[assignment]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def with_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Give every error response of ``document`` the problem schema (in place)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for methods in document.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            extra = {**(_AUTHENTICATED if operation.get("security") else {})}
            if "requestBody" in operation:
                extra.update(_WITH_BODY)
            for status, description in extra.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if _is_problem(status, response):
                    response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
                    if response.get("description") == "Validation Error":
                        response["description"] = "Invalid request; the problem names the fields."
                    elif not response.get("description"):
                        response["description"] = HTTPStatus(int(status)).phrase
            operation["responses"] = dict(sorted(responses.items()))
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    return document


def _is_problem(status: str, response: dict[str, Any]) -> bool:
    """Every 4xx; a 5xx only where the route says so with ``PROBLEM_CONTENT``."""
    return status.startswith("4") or PROBLEM_JSON in response.get("content", {})
