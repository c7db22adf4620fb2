"""``prs tasks`` and ``prs dlq`` against a fake gateway: full ids, narrow layouts, JSON, purge."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from prs_cli.client import client_factory
from prs_cli.main import build_app

from .conftest import GATEWAY, KEY, assert_no_traceback, problem, task_state

TASK_ID = str(uuid.uuid4())
DEAD_ID = str(uuid.uuid4())


def dead_letter(replayed: bool = False) -> dict[str, Any]:
    return {
        "id": DEAD_ID,
        "queue": "workflow",
        "reason": "retries_exhausted",
        "attempts": 4,
        "last_error": "TransientError: database unavailable",
        "message_id": str(uuid.uuid4()),
        "message_type": "deal.process_workflow",
        "task_id": TASK_ID,
        "organization_id": "demo-acme",
        "dead_lettered_at": "2026-11-28T12:00:00Z",
        "replayed_at": "2026-11-28T12:05:00Z" if replayed else None,
        "body_bytes": 12,
        "body_preview": '{"a": 1}',
        "body_truncated": False,
    }


class Gateway:
    """The task-admin and dead-letter endpoints, recording what was asked."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.dead = 2

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return problem(401, "Unauthorized", "no key")
        path, method = request.url.path, request.method
        task = task_state(TASK_ID, "deal-workflow", "FAILED", "boom")
        if method == "GET" and path == "/api/background-tasks/":
            return httpx.Response(200, json={"items": [task], "total": 1})
        if path == f"/api/background-tasks/{TASK_ID}/status/":
            return httpx.Response(200, json=task)
        if method == "POST" and path == f"/api/background-tasks/{TASK_ID}/cancel/":
            return problem(409, "Task cannot be cancelled", f"task {TASK_ID} is FAILED")
        if method == "POST" and path == f"/api/background-tasks/{TASK_ID}/retry/":
            body = {"task_id": TASK_ID, "status": "QUEUED", "queue": "workflow"}
            return httpx.Response(202, json={**body, "status_url": f"{GATEWAY}/x"})
        if method == "GET" and path == "/api/dead-letters/":
            replayed = request.url.params.get("replayed") == "true"
            items = [] if replayed else [dead_letter()] * self.dead
            return httpx.Response(
                200,
                json={"items": items, "total": len(items), "by_queue": {"workflow": self.dead}},
            )
        if method == "GET" and path == f"/api/dead-letters/{DEAD_ID}":
            return httpx.Response(200, json={**dead_letter(), "headers": {"x": 1}, "body": {}})
        if method == "POST" and path == f"/api/dead-letters/{DEAD_ID}/replay":
            return httpx.Response(200, json={"replayed": 1})
        if method == "POST" and path == "/api/dead-letters/replay":
            taken = min(self.dead, int(request.url.params.get("limit", 1000)))
            self.dead -= taken
            return httpx.Response(200, json={"replayed": taken})
        if method == "DELETE" and path == "/api/dead-letters/":
            purged, self.dead = self.dead, 0
            return httpx.Response(200, json={"purged": purged})
        return problem(404, "Not Found", path)

    def sent(self, method: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method]


def run(gateway: Gateway, *args: str, stdin: str | None = None) -> Result:
    app = build_app(client_factory(httpx.MockTransport(gateway)))
    base = ["--gateway-url", GATEWAY, "--api-key", KEY]
    result = CliRunner().invoke(app, [*base, *args], input=stdin)
    assert_no_traceback(result)
    return result


def test_tasks_list_shows_whole_ids_in_a_wide_table() -> None:
    result = run(Gateway(), "tasks", "list", "--status", "failed")
    assert result.exit_code == 0, result.output
    assert TASK_ID in result.output
    assert "┃" in result.output or "│" in result.output


@pytest.mark.parametrize("command", [("tasks", "list"), ("dlq", "list")])
def test_lists_fit_an_80_column_terminal_as_records_with_whole_ids(
    command: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = run(Gateway(), *command)
    assert result.exit_code == 0, result.output
    assert TASK_ID in result.output
    assert all(len(line) <= 80 for line in result.output.splitlines()), result.output


def test_tasks_list_passes_its_filters() -> None:
    gateway = Gateway()
    run(gateway, "tasks", "list", "--queue", "workflow", "--organization", "o1", "--limit", "5")
    params = gateway.requests[0].url.params
    assert (params["queue"], params["organization_id"], params["limit"]) == ("workflow", "o1", "5")
    run(gateway, "tasks", "list", "--organization", "Acme Corporation")
    assert gateway.requests[1].url.params["organization_id"] == "demo-acme"


def test_tasks_list_refuses_an_unknown_status() -> None:
    result = run(Gateway(), "tasks", "list", "--status", "done")
    assert result.exit_code == 2
    assert "--status" in result.output


def test_tasks_show_json_is_the_gateways_record() -> None:
    result = run(Gateway(), "--json", "tasks", "show", TASK_ID)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["task_id"] == TASK_ID


def test_tasks_show_of_something_that_is_not_a_task_id_is_a_usage_error() -> None:
    result = run(Gateway(), "tasks", "show", "nope")
    assert result.exit_code == 2
    assert "TASK_ID" in result.output


def test_tasks_show_of_an_unknown_task_exits_1() -> None:
    other = str(uuid.uuid4())
    result = run(Gateway(), "tasks", "show", other)
    assert result.exit_code == 1
    assert f"no task {other}" in result.output


def test_tasks_cancel_of_a_finished_task_shows_the_gateways_reason() -> None:
    result = run(Gateway(), "tasks", "cancel", TASK_ID)
    assert result.exit_code == 1
    assert "cannot be cancelled" in result.output


def test_tasks_retry_queues_it_again() -> None:
    gateway = Gateway()
    result = run(gateway, "tasks", "retry", TASK_ID, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status"] == "QUEUED"
    assert gateway.sent("POST")[0].url.path.endswith("/retry/")


def test_dlq_show_has_headers_and_body() -> None:
    result = run(Gateway(), "dlq", "show", DEAD_ID)
    assert result.exit_code == 0
    assert DEAD_ID in result.output
    assert "headers" in result.output


def test_dlq_replay_one_or_a_whole_queue() -> None:
    gateway = Gateway()
    assert "replayed 1" in run(gateway, "dlq", "replay", DEAD_ID).output
    assert "replayed 2" in run(gateway, "dlq", "replay", "--queue", "workflow").output
    assert gateway.sent("POST")[1].url.params["queue"] == "workflow"
    assert run(gateway, "dlq", "replay").exit_code == 2


def test_dlq_replay_of_a_queue_goes_in_batches_until_none_waits() -> None:
    gateway = Gateway()
    gateway.dead = 5

    result = run(gateway, "--json", "dlq", "replay", "--queue", "workflow", "--batch-size", "2")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"queue": "workflow", "replayed": 5}
    limits = [r.url.params["limit"] for r in gateway.sent("POST")]
    assert limits == ["2", "2", "1"]
    assert gateway.dead == 0


def test_dlq_purge_asks_first_and_a_no_purges_nothing() -> None:
    gateway = Gateway()
    result = run(gateway, "dlq", "purge", stdin="n\n")
    assert result.exit_code == 1
    assert "delete 2 dead letter(s) for good?" in result.output
    assert not gateway.sent("DELETE")


def test_dlq_purge_with_a_yes_answer_or_flag_deletes() -> None:
    gateway = Gateway()
    assert run(gateway, "dlq", "purge", stdin="y\n").exit_code == 0
    assert len(gateway.sent("DELETE")) == 1
    gateway.dead = 3
    result = run(gateway, "--json", "dlq", "purge", "--yes", "--queue", "workflow")
    assert json.loads(result.stdout) == {"queue": "workflow", "purged": 3}
    assert gateway.sent("DELETE")[1].url.params["queue"] == "workflow"
