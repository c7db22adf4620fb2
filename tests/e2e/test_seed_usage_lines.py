"""Every usage line of the seed's management command, with `python manage.py` replaced by `prs`,
run as written against the five running services."""

from __future__ import annotations

import json
import shlex

import pytest

from .conftest import Stack, output_of

# Copied from the seed's "Management Command" and "Testing" sections, word for word.
SEED_LINES = (
    "python manage.py manage_background_tasks --action=queue --task-type=deal_processing"
    " --priority=high",
    "python manage.py manage_background_tasks --action=monitor",
    "python manage.py manage_background_tasks --action=status --task-id=<task_id>",
    'python manage.py manage_background_tasks --action=test --organization="MyOrg"',
    "python manage.py manage_background_tasks --action=cleanup",
    'python manage.py manage_background_tasks --action=test --organization="TestOrg"',
    "python manage.py manage_background_tasks --action=queue --task-type=deal_processing --dry-run",
)


def as_prs(line: str, task_id: str) -> list[str]:
    """The line's arguments after ``prs``, with a real task id for the ``<task_id>`` placeholder."""
    words = shlex.split(line.replace("<task_id>", task_id))
    assert words[:2] == ["python", "manage.py"]
    return words[2:]


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_every_seed_usage_line_runs_as_written(stack: Stack) -> None:
    stack.wait_ready()
    # A task that exists, for the line that asks for one's status.
    queued = stack.prs_json(
        "manage-background-tasks", "--action=test", "--service=gateway", "--timeout=60"
    )
    task_id = queued["services"]["gateway"]["task_id"]

    for line in SEED_LINES:
        result = stack.prs(*as_prs(line, task_id))
        assert result.returncode == 0, f"{line}\n{output_of(result)}\n{stack.logs()}"
        assert "Traceback" not in result.stderr, line

    # The first line queued the next action of every demo deal: eight tasks the gateway knows.
    listed = stack.prs_json("tasks", "list", "--task-type=deal.process_workflow", "--limit=50")
    assert listed["total"] == 8, json.dumps(listed)[:500]
