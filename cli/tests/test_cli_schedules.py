"""``prs schedules``, against a scripted gateway: the requests it sends and what it shows."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner, Result

from prs_cli.client import client_factory
from prs_cli.main import build_app

from .conftest import GATEWAY, KEY, assert_no_traceback, problem
from .test_cli_actions import Router, accepted

SCHEDULES = "/api/automated-processes/schedules"

LISTED = [
    {
        "name": "health_monitoring",
        "cron": "*/5 * * * *",
        "schedule": "every 5 minutes",
        "enabled": False,
        "next_run": None,
        "description": "Every 5 minutes: each service checks its health.",
        "message_type": "schedule.system_health_check",
        "message_kind": "event",
        "announced": True,
        "revision": 7,
        "changed_at": "2026-12-01T00:00:00Z",
        "changed_by": "ops admin",
        "last_run_at": "2026-12-01T00:05:00Z",
        "last_run_source": "schedule",
        "last_run_task_id": None,
    }
]


def prs(router: Router, *args: str) -> Result:
    app = build_app(client_factory(httpx.MockTransport(router)))
    return CliRunner().invoke(app, ["--gateway-url", GATEWAY, "--api-key", KEY, *args])


def test_list_shows_each_schedule_with_its_state() -> None:
    router = Router({("GET", f"{SCHEDULES}/"): lambda r: httpx.Response(200, json=LISTED)})
    result = prs(router, "schedules", "list")
    assert result.exit_code == 0, result.output
    assert "health_monitoring" in result.output
    assert "every 5 minutes" in result.output
    assert "ops admin" in result.output


def test_list_json_is_the_gateways_answer() -> None:
    router = Router({("GET", f"{SCHEDULES}/"): lambda r: httpx.Response(200, json=LISTED)})
    result = prs(router, "schedules", "list", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == LISTED


@pytest.mark.parametrize("verb", ["enable", "disable", "run"])
def test_enable_disable_and_run_post_to_the_schedule(verb: str) -> None:
    path = f"{SCHEDULES}/system_cleanup/{verb}/"
    router = Router({("POST", path): accepted("system")})
    result = prs(router, "--json", "schedules", verb, "system_cleanup")
    assert result.exit_code == 0, result.output
    assert [r.url.path for r in router.sent("POST")] == [path]
    assert json.loads(result.stdout)["queue"] == "system"


def test_set_patches_the_cron_expression() -> None:
    path = f"{SCHEDULES}/overdue_detection/"
    router = Router({("PATCH", path): accepted("system")})
    result = prs(router, "schedules", "set", "overdue_detection", "0 2 * * *")
    assert result.exit_code == 0, result.output
    [sent] = router.sent("PATCH")
    assert json.loads(sent.content) == {"cron": "0 2 * * *"}
    assert "queued for the scheduler" in result.output


def test_a_refusal_is_one_line_naming_the_problem() -> None:
    path = f"{SCHEDULES}/overdue_detection/"
    router = Router(
        {
            ("PATCH", path): lambda r: problem(
                422, "Invalid request", "cron: 'every day' is not a valid cron expression"
            )
        }
    )
    result = prs(router, "schedules", "set", "overdue_detection", "every day")
    assert result.exit_code == 1
    assert "cron" in result.output
    assert_no_traceback(result)


def test_an_operator_key_is_told_it_is_forbidden() -> None:
    router = Router(
        {("GET", f"{SCHEDULES}/"): lambda r: problem(403, "Forbidden", "needs one of: admin")}
    )
    result = prs(router, "schedules", "list")
    assert result.exit_code == 1
    assert "admin" in result.output
    assert_no_traceback(result)
