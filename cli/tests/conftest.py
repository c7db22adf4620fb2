"""What the CLI tests share: a fake gateway (``httpx.MockTransport``) and a way to run ``prs``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from prs_cli.client import client_factory
from prs_cli.main import build_app

GATEWAY = "http://gateway.test:8000"
KEY = "test-key"
SERVICES = ("gateway", "deal-workflow", "file-processor", "notifier", "scheduler")
ENV_VARS = ("PRS_GATEWAY_URL", "PRS_GATEWAY_PORT", "PRS_API_KEY", "PRS_ADMIN_API_KEY")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # `make test` exports PRS_ADMIN_API_KEY and PRS_GATEWAY_PORT; these tests set their own.
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    # A development key file left in ./data by `make run` must not stand in for a missing key.
    monkeypatch.setenv("PRS_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.delenv("PRS_ENVIRONMENT", raising=False)
    # Wide enough that rich never folds a service name or an error message.
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")


def problem(status: int, title: str, detail: str) -> httpx.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


class FakeGateway:
    """The two endpoints the command uses, with scripted task outcomes."""

    def __init__(self, outcomes: dict[str, tuple[str, str | None]] | None = None) -> None:
        # service -> (final status, error); services not listed succeed.
        self.outcomes = outcomes or {}
        self.requests: list[httpx.Request] = []
        self.tasks: dict[str, dict[str, Any]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return problem(401, "Unauthorized", "send an API key as 'Authorization: Bearer <key>'")
        path = request.url.path
        if request.method == "POST" and path == "/api/background-tasks/queue-diagnostic/":
            return self._queue(json.loads(request.content))
        if request.method == "GET" and path.endswith("/status/"):
            task_id = path.split("/")[-3]
            if task_id not in self.tasks:
                return problem(404, "Task not found", f"no task {task_id}")
            return httpx.Response(200, json=self.tasks[task_id])
        return problem(404, "Not Found", path)

    def _queue(self, body: dict[str, Any]) -> httpx.Response:
        queued = {}
        for service in body["services"]:
            task_id = str(uuid.uuid4())
            status, error = self.outcomes.get(service, ("SUCCEEDED", None))
            self.tasks[task_id] = task_state(task_id, service, status, error, body.get("note"))
            queued[service] = {
                "task_id": task_id,
                "status": "QUEUED",
                "queue": service,
                "status_url": f"{GATEWAY}/api/background-tasks/{task_id}/status/",
            }
        return httpx.Response(202, json={"tasks": queued})

    @property
    def posted(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.method == "POST"]


def task_state(
    task_id: str, service: str, status: str, error: str | None, note: str | None = None
) -> dict[str, Any]:
    terminal = status in {"SUCCEEDED", "FAILED", "DEAD_LETTERED", "CANCELLED", "EXPIRED"}
    succeeded = status == "SUCCEEDED"
    return {
        "task_id": task_id,
        "task_type": "diagnostic.ping",
        "status": status,
        "successful": succeeded if terminal else None,
        "result": {"service": service, "worker": f"host:{len(service)}", "note": note}
        if succeeded
        else None,
        "error": error,
        "attempts": 1,
        "queue": "system",
        "priority": "high",
        "organization_id": None,
        "queued_by": "admin",
        "correlation_id": str(uuid.uuid4()),
        "service": service if terminal else None,
        "worker": f"host:{len(service)}" if terminal else None,
        "queued_at": "2026-01-01T10:00:00.000000Z",
        "started_at": "2026-01-01T10:00:00.010000Z" if terminal else None,
        "finished_at": "2026-01-01T10:00:00.042000Z" if terminal else None,
        "updated_at": "2026-01-01T10:00:00.042000Z",
        "retry_at": None,
        "duration_ms": 3.5 if terminal else None,
        "expires_at": None,
    }


def invoke(
    handler: Callable[[httpx.Request], httpx.Response], *args: str, key: str | None = KEY
) -> Result:
    app = build_app(client_factory(httpx.MockTransport(handler)))
    base = ["--gateway-url", GATEWAY]
    if key is not None:
        base += ["--api-key", key]
    return CliRunner().invoke(app, [*base, "manage-background-tasks", *args])


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
