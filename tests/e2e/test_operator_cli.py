"""`prs tasks` and `prs dlq` against the five running services: what an operator types."""

from __future__ import annotations

import asyncio

import pytest

from gateway.broker_view import queue_names
from prs_shared.messaging.topology import Topology

from .conftest import Stack, output_of
from .test_malformed_messages import publish_poison, wait_for_consumers, wait_until


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_an_operator_lists_shows_replays_and_purges_dead_letters_with_prs(
    stack: Stack, amqp_url: str, namespace: str
) -> None:
    stack.wait_ready()
    workflow = Topology(namespace=namespace).queue("workflow")
    wait_for_consumers(stack, amqp_url, queue_names(Topology(namespace=namespace)))
    asyncio.run(publish_poison(amqp_url, [workflow]))

    def waiting() -> list[dict[str, object]] | None:
        page = stack.prs_json("dlq", "list", f"--queue={workflow}")
        items: list[dict[str, object]] = page["items"]
        return items if len(items) == 2 else None

    items = wait_until(waiting, 60, "both malformed messages archived", stack)
    first = str(items[0]["id"])

    shown = stack.prs("dlq", "show", first)
    assert shown.returncode == 0, output_of(shown)
    assert first in shown.stdout
    assert str(items[0]["reason"]) in shown.stdout

    # Batches of one: two requests, both replayed; still malformed, they die again.
    replayed = stack.prs_json("dlq", "replay", f"--queue={workflow}", "--batch-size=1")
    assert replayed == {"queue": workflow, "replayed": 2}
    assert stack.prs_json("dlq", "list", f"--queue={workflow}", "--replayed")["total"] == 2
    wait_until(waiting, 60, "the replayed messages dead-lettered again", stack)

    refused = stack.prs("dlq", "purge", f"--queue={workflow}", input_text="n\n")
    assert refused.returncode == 1, output_of(refused)
    assert "for good?" in refused.stderr
    purged = stack.prs_json("dlq", "purge", f"--queue={workflow}", "--yes")
    assert purged == {"queue": workflow, "purged": 4}
    assert stack.prs_json("dlq", "list", f"--queue={workflow}")["total"] == 0

    missing = stack.prs("dlq", "show", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 1
    assert "no dead letter" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_operator_follows_a_task_and_is_told_why_it_cannot_be_cancelled_or_retried(
    stack: Stack,
) -> None:
    stack.wait_ready()
    ran = stack.prs_json(
        "manage-background-tasks", "--action=test", "--service=gateway", "--timeout=60"
    )
    task_id = ran["services"]["gateway"]["task_id"]

    listed = stack.prs_json("tasks", "list", "--status=SUCCEEDED")
    assert task_id in [t["task_id"] for t in listed["items"]]
    shown = stack.prs("tasks", "show", task_id)
    assert shown.returncode == 0, output_of(shown)
    assert task_id in shown.stdout  # whole, never shortened
    assert "SUCCEEDED" in shown.stdout

    for verb in ("cancel", "retry"):
        refused = stack.prs("tasks", verb, task_id)
        assert refused.returncode == 1, output_of(refused)
        assert "SUCCEEDED" in refused.stderr, output_of(refused)
        assert "Traceback" not in refused.stderr
