"""The ``prs`` command against a fake gateway (``httpx.MockTransport``): no network, no services."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from prs_cli.client import client_factory
from prs_cli.config import resolve_gateway_url
from prs_cli.errors import UsageError
from prs_cli.main import build_app

GATEWAY = "http://gateway.test:8000"
KEY = "test-key"
SERVICES = ("gateway", "deal-workflow", "file-processor", "notifier", "scheduler")
ENV_VARS = ("PRS_GATEWAY_URL", "PRS_GATEWAY_PORT", "PRS_API_KEY", "PRS_ADMIN_API_KEY")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # `make test` exports PRS_ADMIN_API_KEY and PRS_GATEWAY_PORT; these tests set their own.
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
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


# --action=test


def test_test_action_all_succeeded_exits_0() -> None:
    gateway = FakeGateway()
    result = invoke(gateway, "--action=test", "--organization=MyOrg")

    assert result.exit_code == 0, result.output
    for service in SERVICES:
        line = next(line for line in result.stdout.splitlines() if f" {service} " in line)
        assert "SUCCEEDED" in line
        assert f"host:{len(service)}" in line
        assert "42" in line  # queued_at -> finished_at in ms
    assert "all 5 services answered" in result.stdout
    assert gateway.posted == [{"services": list(SERVICES), "note": "MyOrg"}]


def test_test_action_one_failed_exits_1_naming_the_service() -> None:
    gateway = FakeGateway({"deal-workflow": ("FAILED", "boom: handler raised")})
    result = invoke(gateway, "--action=test")

    assert result.exit_code == 1
    assert "1 of 5 services failed: deal-workflow (boom: handler raised)" in result.stderr
    failed_row = next(line for line in result.stdout.splitlines() if "deal-workflow" in line)
    assert "FAILED" in failed_row
    assert_no_traceback(result)


def test_test_action_times_out_on_a_task_that_never_finishes() -> None:
    gateway = FakeGateway({"notifier": ("QUEUED", None)})
    result = invoke(gateway, "--action=test", "--timeout=0")

    assert result.exit_code == 1
    assert "notifier (still QUEUED after 0s)" in result.stderr


def test_test_action_fails_when_another_service_answered() -> None:
    gateway = FakeGateway()

    def misrouted(request: httpx.Request) -> httpx.Response:
        response = gateway(request)
        if request.method == "GET":
            body = response.json()
            body["service"] = "scheduler"
            return httpx.Response(200, json=body)
        return response

    result = invoke(misrouted, "--action=test", "--service=notifier")

    assert result.exit_code == 1
    assert "notifier (answered by scheduler, not notifier)" in result.stderr


def test_test_action_json_output() -> None:
    gateway = FakeGateway({"scheduler": ("DEAD_LETTERED", "gave up")})
    result = invoke(gateway, "--action=test", "--json", "--service=scheduler", "--service=gateway")

    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert set(data["services"]) == {"scheduler", "gateway"}
    assert data["services"]["gateway"]["status"] == "SUCCEEDED"
    assert data["services"]["gateway"]["latency_ms"] == 42.0
    assert data["services"]["scheduler"]["error"] == "gave up"
    assert gateway.posted == [{"services": ["scheduler", "gateway"], "note": None}]


def test_dry_run_sends_nothing() -> None:
    gateway = FakeGateway()
    result = invoke(gateway, "--action=test", "--dry-run", "--organization=MyOrg")

    assert result.exit_code == 0, result.output
    assert gateway.requests == []
    assert f"would POST {GATEWAY}/api/background-tasks/queue-diagnostic/" in result.stdout
    assert '"note": "MyOrg"' in result.stdout


def test_dry_run_needs_no_api_key() -> None:
    gateway = FakeGateway()
    result = invoke(gateway, "--action=test", "--dry-run", "--json", key=None)

    assert result.exit_code == 0, result.output
    assert gateway.requests == []
    plan = json.loads(result.stdout)
    assert plan["requests"][0]["body"]["services"] == list(SERVICES)


# --action=status


def test_status_found() -> None:
    gateway = FakeGateway()
    task_id = str(uuid.uuid4())
    gateway.tasks[task_id] = task_state(task_id, "notifier", "SUCCEEDED", None)

    result = invoke(gateway, "--action=status", f"--task-id={task_id}")

    assert result.exit_code == 0, result.output
    assert task_id in result.stdout
    assert "SUCCEEDED" in result.stdout
    assert "diagnostic.ping" in result.stdout
    assert "host:8" in result.stdout


def test_status_json_is_the_gateway_answer() -> None:
    gateway = FakeGateway()
    task_id = str(uuid.uuid4())
    gateway.tasks[task_id] = task_state(task_id, "notifier", "STARTED", None)

    result = invoke(gateway, "--action=status", f"--task-id={task_id}", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == gateway.tasks[task_id]


def test_status_404_says_no_task() -> None:
    task_id = str(uuid.uuid4())
    result = invoke(FakeGateway(), "--action=status", f"--task-id={task_id}")

    assert result.exit_code == 1
    assert f"no task {task_id}" in result.stderr
    assert_no_traceback(result)


def test_status_without_task_id_is_a_usage_error() -> None:
    gateway = FakeGateway()
    result = invoke(gateway, "--action=status")

    assert result.exit_code == 2
    assert "--task-id" in result.stderr
    assert gateway.requests == []
    assert_no_traceback(result)


def test_status_with_a_malformed_task_id_is_a_usage_error() -> None:
    result = invoke(FakeGateway(), "--action=status", "--task-id=not-a-uuid")

    assert result.exit_code == 2
    assert "--task-id" in result.stderr


# errors


def test_gateway_unreachable() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result = invoke(refused, "--action=test")

    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert f"gateway not reachable at {GATEWAY}: start it with `make run`" in message
    assert_no_traceback(result)


def test_problem_details_are_shown_as_title_and_detail() -> None:
    result = invoke(FakeGateway(), "--action=test", key="wrong")

    assert result.exit_code == 1
    assert "Unauthorized: send an API key" in result.stderr
    assert "(HTTP 401)" in result.stderr
    assert_no_traceback(result)


def test_error_that_is_not_a_problem_document() -> None:
    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="upstream down")

    result = invoke(proxy, "--action=test")

    assert result.exit_code == 1
    assert "Bad Gateway: upstream down (HTTP 502)" in result.stderr


def test_missing_api_key_is_a_usage_error() -> None:
    gateway = FakeGateway()
    result = invoke(gateway, "--action=test", key=None)

    assert result.exit_code == 2
    assert "--api-key" in result.stderr
    assert gateway.requests == []


def test_api_key_falls_back_to_the_admin_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRS_ADMIN_API_KEY", KEY)
    result = invoke(FakeGateway(), "--action=test", key=None)

    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("action", ["queue", "monitor", "cleanup"])
def test_actions_without_an_endpoint_say_so(action: str) -> None:
    gateway = FakeGateway()
    result = invoke(gateway, f"--action={action}", "--task-type=x", "--priority=high")

    assert result.exit_code == 2
    assert f"--action={action} is not available in this version" in result.stderr
    assert gateway.requests == []
    assert_no_traceback(result)


def test_unknown_action_is_a_usage_error() -> None:
    result = invoke(FakeGateway(), "--action=explode")

    assert result.exit_code == 2
    assert "--action" in result.stderr


# configuration


def test_gateway_url_from_port() -> None:
    assert resolve_gateway_url(None, {"PRS_GATEWAY_PORT": "8123"}) == "http://127.0.0.1:8123"
    assert resolve_gateway_url(None, {}) == "http://127.0.0.1:8000"
    assert resolve_gateway_url("http://h:1/", {"PRS_GATEWAY_PORT": "8123"}) == "http://h:1"


@pytest.mark.parametrize(
    ("explicit", "env"), [("localhost:8000", {}), (None, {"PRS_GATEWAY_PORT": "eighty"})]
)
def test_bad_gateway_address_is_a_usage_error(explicit: str | None, env: dict[str, str]) -> None:
    with pytest.raises(UsageError):
        resolve_gateway_url(explicit, env)


def test_organization_longer_than_a_note_is_a_usage_error() -> None:
    gateway = FakeGateway()
    result = invoke(gateway, "--action=test", f"--organization={'x' * 501}")

    assert result.exit_code == 2
    assert "--organization" in result.stderr
    assert gateway.requests == []


def test_flags_the_test_action_ignores_are_named() -> None:
    result = invoke(FakeGateway(), "--action=test", "--priority=low", "--service=notifier")

    assert result.exit_code == 0, result.output
    assert "--priority is ignored by --action=test" in result.stderr
