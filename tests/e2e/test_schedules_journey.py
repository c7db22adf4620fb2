"""End to end: an admin disables a running schedule with `prs schedules`, the real scheduler
stops running it, and the gateway's process-status and schedule list say so; enabling it again
resumes it.

``task_monitoring`` is seeded to fire every second (a six-field cron expression) so that the test
sees it run, stop and run again without waiting for a real schedule.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Stack, make_stack, output_of

JOB = "task_monitoring"
WAIT = 30.0


@pytest.fixture
def every_second(amqp_url: str, namespace: str, tmp_path: Path) -> Iterator[Stack]:
    others = (
        "deal_verification_reminders",
        "commission_calculation",
        "audit_report_generation",
        "overdue_detection",
        "system_cleanup",
        "health_monitoring",
        "failed_task_cleanup",
    )
    services = make_stack(
        amqp_url,
        namespace,
        tmp_path,
        PRS_SCHEDULER_DISABLED_JOBS=",".join(others),
        PRS_SCHEDULER_JOB_CRONS=json.dumps({JOB: "* * * * * *"}),
    )
    try:
        services.start()
        yield services
    finally:
        services.kill()


def until(check: Any, what: str, stack: Stack) -> Any:
    deadline = time.monotonic() + WAIT
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    pytest.fail(f"{what} not seen within {WAIT:g}s (last: {last!r})\n{stack.logs()}")


def schedule_of(stack: Stack) -> dict[str, Any]:
    listed = stack.prs_json("schedules", "list")
    [schedule] = [s for s in listed if s["name"] == JOB]
    return dict(schedule)


def process_status(stack: Stack) -> dict[str, Any]:
    with stack.http() as http:
        response = http.get(
            "/api/automated-processes/process-status/", params={"process_name": JOB}
        )
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_a_schedule_disabled_through_the_gateway_stops_running_and_resumes_when_enabled(
    every_second: Stack,
) -> None:
    stack = every_second
    stack.wait_ready()
    running = until(
        lambda: (s := schedule_of(stack))["enabled"] and s["last_run_at"] and s,
        "the job running on its schedule",
        stack,
    )
    assert running["announced"] is True

    queued = stack.prs_json("schedules", "disable", JOB)
    assert queued["queue"] == "system"
    until(lambda: process_status(stack)["enabled"] is False, "the job disabled", stack)
    disabled = schedule_of(stack)
    assert disabled["changed_by"] != "environment"
    assert disabled["next_run"] is None
    # A run staged by a tick that read the schedule just before the change may still arrive;
    # after that, several due times pass with no run.
    time.sleep(2)
    stopped_at = schedule_of(stack)["last_run_at"]
    time.sleep(3)
    assert schedule_of(stack)["last_run_at"] == stopped_at
    assert process_status(stack)["last_run"] == stopped_at

    refused = stack.prs("schedules", "run", JOB)
    assert refused.returncode == 1, output_of(refused)
    assert "disabled" in refused.stderr

    bad = stack.prs("schedules", "set", JOB, "every second")
    assert bad.returncode == 1, output_of(bad)
    assert "cron" in bad.stderr

    stack.prs_json("schedules", "enable", JOB)
    resumed = until(
        lambda: (s := schedule_of(stack))["enabled"] and s["last_run_at"] != stopped_at and s,
        "the job running again",
        stack,
    )
    assert resumed["last_run_at"] > stopped_at
    status = process_status(stack)
    assert status["enabled"] is True
    # The gateway handles task monitoring itself and records each run as a task.
    assert status["status"] == "SUCCEEDED"
    assert status["success_count"] >= 1
