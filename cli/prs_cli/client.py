"""A small synchronous client for the gateway's REST API.

Every failure becomes a :class:`~prs_cli.errors.CliError` subclass: an error response becomes a
:class:`~prs_cli.errors.ProblemError` carrying the problem's title and detail, a refused
connection a :class:`~prs_cli.errors.GatewayUnreachable`. Tests pass an ``httpx.MockTransport``
as ``transport`` to run the whole command without a gateway.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from prs_cli.config import Config
from prs_cli.errors import GatewayError, GatewayUnreachable, ProblemError, UsageError

API_PREFIX = "/api/background-tasks"
DEFAULT_TIMEOUT = 10.0
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "DEAD_LETTERED", "CANCELLED", "EXPIRED"})


@dataclass(frozen=True)
class QueuedTask:
    """One task the gateway accepted."""

    service: str
    task_id: str
    status: str
    queue: str
    status_url: str


@dataclass(frozen=True)
class TaskState:
    """A task's status as the gateway reports it; ``raw`` keeps every field for display."""

    task_id: str
    status: str
    raw: dict[str, Any]

    @property
    def terminal(self) -> bool:
        """Whether the task will not change any more."""
        return self.status in TERMINAL_STATUSES

    def get(self, field: str) -> Any:
        """One field of the gateway's answer, ``None`` when absent."""
        return self.raw.get(field)


class GatewayClient:
    """The gateway's background-task endpoints, authenticated with one API key."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            headers={"Accept": "application/json, application/problem+json"},
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def url(self, path: str) -> str:
        """The absolute URL of an API path (what a request would go to)."""
        return f"{self.base_url}{path}"

    def queue_diagnostic(self, services: Sequence[str], note: str | None) -> list[QueuedTask]:
        """Queue the diagnostic task for each service; one accepted task per service."""
        return self.queue_per_service(diagnostic_path(), diagnostic_body(services, note))

    def queue_per_service(
        self, path: str, body: Mapping[str, Any] | None = None
    ) -> list[QueuedTask]:
        """POST to an endpoint that queues one task per service (``{"tasks": {service: …}}``)."""
        answer = self._request("POST", path, json_body=dict(body) if body is not None else None)
        tasks = answer.get("tasks") if isinstance(answer, dict) else None
        if not isinstance(tasks, dict):
            raise _unexpected(path, answer)
        queued = []
        for service, task in tasks.items():
            if not isinstance(task, dict) or "task_id" not in task:
                raise _unexpected(path, answer)
            queued.append(queued_task(str(service), task))
        return queued

    def queue(self, path: str, body: Mapping[str, Any] | None, *, service: str) -> QueuedTask:
        """POST to a queuing endpoint; the one task it accepted, handled by ``service``."""
        answer = self._request("POST", path, json_body=dict(body) if body is not None else None)
        if not isinstance(answer, dict) or "task_id" not in answer:
            raise _unexpected(path, answer)
        return queued_task(service, answer)

    def get_json(
        self,
        path: str,
        params: Mapping[str, str | int] | None = None,
        *,
        accept: Collection[int] = (),
    ) -> Any:
        """GET a JSON document; error statuses in ``accept`` return their body instead of raising.

        (The system-health endpoint answers 503 with the same report when the system is down.)
        """
        return self._request("GET", path, params=params, accept=accept)

    def post_json(
        self,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> Any:
        """POST (a JSON body, or none) and return the JSON answer."""
        return self._request(
            "POST", path, json_body=dict(body) if body is not None else None, params=params
        )

    def patch_json(self, path: str, body: Mapping[str, Any]) -> Any:
        """PATCH a JSON body and return the JSON answer."""
        return self._request("PATCH", path, json_body=dict(body))

    def delete_json(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """DELETE and return the JSON answer."""
        return self._request("DELETE", path, params=params)

    @property
    def longest_hold(self) -> float:
        """The longest ``wait`` a status request may ask for and still answer within the
        request timeout (the gateway holds it at most 30 s)."""
        return max(0.0, min(20.0, self._timeout - 1.0))

    def task_status(self, task_id: str, wait: float = 0) -> TaskState:
        """One task's status, held by the gateway up to ``wait`` seconds until it has finished;
        a :class:`ProblemError` with status 404 if unknown."""
        params = {"wait": f"{wait:.3f}"} if wait > 0 else None
        body = self._request("GET", status_path(task_id), params=params)
        if not isinstance(body, dict) or "status" not in body:
            raise _unexpected("status", body)
        return TaskState(task_id=str(body.get("task_id", task_id)), status=body["status"], raw=body)

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str | int] | None = None,
        accept: Collection[int] = (),
    ) -> Any:
        if not self._api_key:
            raise UsageError(
                "no API key given: pass --api-key or set PRS_API_KEY (or PRS_ADMIN_API_KEY); "
                "in development `make run` leaves its key in ./data/dev-admin-key",
                param="--api-key",
            )
        headers = {"Authorization": f"Bearer {self._api_key}"}
        try:
            response = self._http.request(
                method, path, json=json_body, params=params, headers=headers
            )
        except httpx.ConnectError as exc:
            raise GatewayUnreachable(self.base_url, _reason(exc)) from exc
        except httpx.TimeoutException as exc:
            raise GatewayError(
                f"gateway at {self.base_url} did not answer within {self._timeout:g}s"
            ) from exc
        except httpx.HTTPError as exc:
            raise GatewayError(f"{method} {self.url(path)} failed: {_reason(exc)}") from exc
        if response.is_error and response.status_code not in accept:
            problem = problem_from(response)
            if problem.status == 401:
                # The usual cause is a missing or stale key in the environment, so say where.
                problem.message += "; check --api-key or PRS_API_KEY"
            raise problem
        try:
            return response.json()
        except ValueError as exc:
            raise GatewayError(
                f"gateway answered {method} {path} with something that is not JSON"
            ) from exc


ClientFactory = Callable[[Config], GatewayClient]


def make_client(config: Config, transport: httpx.BaseTransport | None = None) -> GatewayClient:
    """A client for the configured gateway (``transport`` replaces the network, in tests)."""
    return GatewayClient(config.gateway_url, config.api_key, transport=transport)


def client_factory(transport: httpx.BaseTransport | None = None) -> ClientFactory:
    """A factory that builds every client on ``transport`` (``None``: the real network)."""

    def factory(config: Config) -> GatewayClient:
        return make_client(config, transport)

    return factory


def diagnostic_path() -> str:
    """Path of the endpoint that queues diagnostic tasks."""
    return f"{API_PREFIX}/queue-diagnostic/"


def status_path(task_id: str) -> str:
    """Path of one task's status."""
    return f"{API_PREFIX}/{task_id}/status/"


def diagnostic_body(services: Sequence[str], note: str | None) -> dict[str, Any]:
    """The request body of queue-diagnostic."""
    return {"services": list(services), "note": note}


def queued_task(service: str, answer: Mapping[str, Any]) -> QueuedTask:
    """A queuing endpoint's 202 answer (``task_id``, ``status``, ``queue``, ``status_url``)."""
    return QueuedTask(
        service=service,
        task_id=str(answer["task_id"]),
        status=str(answer.get("status", "")),
        queue=str(answer.get("queue", "")),
        status_url=str(answer.get("status_url", "")),
    )


def problem_from(response: httpx.Response) -> ProblemError:
    """Turn an error response into a :class:`ProblemError`.

    The gateway answers with ``application/problem+json``; anything in front of it (a proxy, a
    different server on the port) may not, so the reason phrase stands in for a missing title.
    """
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    title = response.reason_phrase or f"HTTP {response.status_code}"
    detail: str | None = None
    if isinstance(body, dict):
        if isinstance(body.get("title"), str) and body["title"]:
            title = body["title"]
        raw_detail = body.get("detail")
        if isinstance(raw_detail, str):
            detail = raw_detail
        elif raw_detail is not None:
            detail = json.dumps(raw_detail)
    elif response.text.strip():
        detail = response.text.strip()[:200]
    return ProblemError(
        response.status_code, title, detail, body if isinstance(body, dict) else None
    )


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _unexpected(endpoint: str, body: Any) -> GatewayError:
    snippet = json.dumps(body)[:200] if body is not None else "nothing"
    return GatewayError(f"unexpected answer from {endpoint}: {snippet}")
