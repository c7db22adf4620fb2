"""A task whose worker died with its command is found by task monitoring, requeued, and run
once by the real deal-workflow service; later runs of the monitor leave it alone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, update
from sqlalchemy.orm import Session

from gateway.models import Task
from prs_shared.db.tables import inbox
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.schedule import TASK_MONITORING, ScheduleTick
from prs_shared.testing.fixtures import BrokerProbe, eventually

from .conftest import SERVICES, Stack, make_stack

WAIT = 60.0


def database(stack: Stack, service: str) -> Any:
    return create_engine(f"sqlite:///{stack.data_dir / service}.sqlite3")


def wait_for(check: Any, what: str, stack: Stack) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        stack.assert_all_running(f"while waiting for {what}")
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"{what} not within {WAIT}s\n{stack.logs()}")


async def tick(publisher: Publisher, at: datetime) -> str:
    """Publish a task_monitoring tick for ``at``; its message id."""
    payload = ScheduleTick(job="task_monitoring", scheduled_for=at)
    envelope = Envelope(type=TASK_MONITORING.type, payload=payload.model_dump(mode="json"))
    await publisher.publish(envelope)
    return str(envelope.id)


def summary_of(stack: Stack, tick_id: str) -> dict[str, Any] | None:
    """The gateway's result for a tick, once it has handled it."""
    with Session(database(stack, "gateway")) as session:
        result: dict[str, Any] | None = session.scalar(
            select(inbox.c.result).where(inbox.c.message_id == tick_id)
        )
    return result


async def test_a_dead_workers_lost_task_is_requeued_and_run_once_by_the_real_worker(
    amqp_url: str, namespace: str, tmp_path: Path, broker: BrokerProbe, publisher: Publisher
) -> None:
    stack = make_stack(amqp_url, namespace, tmp_path)
    try:
        stack.start([s for s in SERVICES if s != "deal-workflow"])
        stack.wait_ready()
        with stack.http() as http:
            queued = http.post(
                "/api/background-tasks/queue-diagnostic/", json={"services": ["deal-workflow"]}
            )
            assert queued.status_code == 202, queued.text
            task_id = queued.json()["tasks"]["deal-workflow"]["task_id"]

            async def waiting() -> bool:
                return (await broker.queue(namespace + "workflow")).messages == 1

            await eventually(waiting, timeout=WAIT, message="the ping waits in workflow")
            # Its worker took it and died with it, the broker's copy gone too: the registry
            # last heard it STARTED there.
            assert len(await broker.get_all(namespace + "workflow")) == 1
            gateway_db = database(stack, "gateway")
            with Session(gateway_db) as session, session.begin():
                message_id = session.scalar(select(Task.message_id).where(Task.task_id == task_id))
                session.execute(
                    update(Task)
                    .where(Task.task_id == task_id)
                    .values(
                        status="STARTED",
                        attempts=1,
                        worker="deal-workflow:gone",
                        started_at=datetime.now(UTC) - timedelta(minutes=5),
                    )
                )
            assert message_id is not None

            stack.start(["deal-workflow"])

            async def consumed() -> bool:
                return (await broker.queue(namespace + "workflow")).consumers == 1

            await eventually(consumed, timeout=WAIT, message="deal-workflow consumes workflow")
            first = await tick(publisher, datetime.now(UTC) + timedelta(hours=1))
            summary = wait_for(lambda: summary_of(stack, first), "the first tick handled", stack)
            assert summary["dead_worker"] == 1
            assert summary["requeued"] == 1

            def succeeded() -> dict[str, Any] | None:
                body: dict[str, Any] = http.get(f"/api/background-tasks/{task_id}/status/").json()
                return body if body["status"] == "SUCCEEDED" else None

            done = wait_for(succeeded, "the requeued ping SUCCEEDED", stack)
            assert done["result"]["service"] == "deal-workflow"
            assert done["stalled_requeues"] == 1
            assert done["stalled_at"] is None

            # A later run finds nothing: the task has moved on, no second copy is sent.
            later = await tick(publisher, datetime.now(UTC) + timedelta(hours=2))
            summary = wait_for(lambda: summary_of(stack, later), "the later tick handled", stack)
            assert summary["requeued"] == 0
            assert summary["stalled"] == []
            history = http.get(f"/api/background-tasks/{task_id}/events/").json()
            requeues = [e for e in history["events"] if (e.get("detail") or {}).get("how")]
            assert len(requeues) == 1, history

        def handled_once() -> int:
            with Session(database(stack, "deal-workflow")) as session:
                n = session.scalar(select(func.count()).where(inbox.c.message_id == message_id))
            return int(n or 0)

        # The worker ran the command it was sent first, under that command's id, once.
        assert wait_for(handled_once, "deal-workflow's inbox row", stack) == 1
        assert (await broker.queue(namespace + "workflow")).messages == 0
    finally:
        stack.kill()
