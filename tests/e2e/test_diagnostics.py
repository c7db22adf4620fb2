"""End to end: the five services as `make run` starts them, driven by the `prs` command.

The test checks that every service answers the diagnostic task, that a task's status can be read
back, and that SIGTERM stops every service cleanly. The services run as in `conftest.py`.
"""

from __future__ import annotations

import json
import signal

import pytest

from .conftest import SERVICES, STOP_TIMEOUT, Stack, output_of


def describe_exit(code: int | None) -> str:
    if code is None:
        return f"still running {STOP_TIMEOUT:g}s after SIGTERM"
    if code < 0:
        # Popen reports death by a signal as its negated number.
        return f"killed by {signal.Signals(-code).name} (exit status {128 - code})"
    return f"exit code {code}"


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_every_service_answers_the_diagnostic_and_stops_cleanly(stack: Stack) -> None:
    stack.wait_ready()

    result = stack.prs("manage-background-tasks", "--action=test", "--organization=MyOrg")
    assert result.returncode == 0, f"{output_of(result)}\n{stack.logs()}"
    lines = result.stdout.splitlines()
    for service in SERVICES:
        rows = [line for line in lines if f" {service} " in line]
        assert rows, f"{service} missing from the table\n{output_of(result)}"
        assert "SUCCEEDED" in rows[0], f"{service}: {rows[0]}"

    as_json = stack.prs(
        "manage-background-tasks", "--action=test", "--json", "--organization=MyOrg"
    )
    assert as_json.returncode == 0, f"{output_of(as_json)}\n{stack.logs()}"
    answers = json.loads(as_json.stdout)
    assert answers["ok"] is True
    assert set(answers["services"]) == set(SERVICES)
    workers = {s: a["worker"] for s, a in answers["services"].items()}
    assert len(set(workers.values())) == len(SERVICES), f"one worker per service: {workers}"
    task_id = answers["services"]["deal-workflow"]["task_id"]

    shown = stack.prs("manage-background-tasks", "--action=status", f"--task-id={task_id}")
    assert shown.returncode == 0, output_of(shown)
    assert task_id in shown.stdout
    assert "SUCCEEDED" in shown.stdout
    assert "deal-workflow" in shown.stdout

    status = stack.prs(
        "manage-background-tasks", "--action=status", f"--task-id={task_id}", "--json"
    )
    assert status.returncode == 0, output_of(status)
    state = json.loads(status.stdout)
    assert state["status"] == "SUCCEEDED"
    assert state["service"] == "deal-workflow"
    assert state["result"]["service"] == "deal-workflow"
    assert state["result"]["note"] == "MyOrg"
    assert state["worker"] == workers["deal-workflow"]

    stack.assert_all_running("before SIGTERM")
    codes = stack.terminate()
    unclean = {name: describe_exit(code) for name, code in codes.items() if code != 0}
    assert not unclean, f"not a clean stop on SIGTERM: {unclean}\n{stack.logs()}"
