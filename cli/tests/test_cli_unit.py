"""The ``prs`` command against a fake gateway (``httpx.MockTransport``): no network, no services."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from prs_cli.config import resolve_gateway_url
from prs_cli.errors import UsageError
from prs_shared.dev_key import write_dev_key

from .conftest import GATEWAY, KEY, SERVICES, FakeGateway, assert_no_traceback, invoke, task_state

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


def test_status_requests_ask_the_gateway_to_hold_them_within_the_request_timeout() -> None:
    gateway = FakeGateway()
    result = invoke(gateway, "--action=test", "--timeout=60")

    assert result.exit_code == 0, result.output
    holds = [
        float(r.url.params["wait"]) for r in gateway.requests if r.url.path.endswith("/status/")
    ]
    assert len(holds) == len(SERVICES), gateway.requests
    # Held until each task finishes, but never past the HTTP timeout (10 s by default).
    assert all(0 < hold <= 9 for hold in holds), holds


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


def test_in_development_the_key_comes_from_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_dev_key(tmp_path / "data", KEY)
    monkeypatch.setenv("PRS_DATA_DIR", str(tmp_path / "data"))
    result = invoke(FakeGateway(), "--action=test", key=None)

    assert result.exit_code == 0, result.output


def test_outside_development_the_data_dir_key_is_not_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_dev_key(tmp_path / "data", KEY)
    monkeypatch.setenv("PRS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PRS_ENVIRONMENT", "production")
    result = invoke(FakeGateway(), "--action=test", key=None)

    assert result.exit_code == 2
    assert "no API key given" in result.stderr


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
