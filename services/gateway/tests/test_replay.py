"""Replaying a dead letter goes through the gateway's outbox: nothing leaves before the commit.

A replay used to publish first and reset the task afterwards; a quick worker's SUCCEEDED could
reach the registry while the task was still DEAD_LETTERED (and be ignored, a finished task never
goes back), after which the reset left the task QUEUED for ever.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import pytest
from sqlalchemy import func, select

from gateway.state import GatewayState
from prs_shared.db.tables import outbox
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.messages import TaskLifecycle, TaskStatus
from prs_shared.testing.fixtures import eventually
from prs_shared.testing.hosts import running_host
from prs_shared.testing.probe import EFFECT, MIGRATIONS, Effect, effects, probe_registry
from prs_shared.testing.worker import ProbeSettings

from .conftest import Gateway

pytestmark = pytest.mark.asyncio


async def status_of(gateway: Gateway, task_id: uuid.UUID) -> str:
    r = await gateway.client.get(f"/api/background-tasks/{task_id}/status/", headers=gateway.auth())
    return str(r.json().get("status"))


async def test_a_replay_leaves_only_after_its_commit_and_its_task_ends_succeeded(
    gateway: Gateway, amqp_url: str, namespace: str, tmp_path: Path
) -> None:
    state: GatewayState = gateway.app.state.gateway
    topology = state.host.topology
    command = Envelope(
        type=EFFECT.type, payload=Effect(key="replayed").model_dump(), task_id=uuid.uuid4()
    )
    failed = TaskLifecycle(
        task_id=command.task_id,  # type: ignore[arg-type]
        task_type=EFFECT.type,
        status=TaskStatus.DEAD_LETTERED,
        queue=topology.queue("workflow"),
        service="probe",
        worker="probe:1",
        attempt=4,
        at=datetime.now(UTC),
        error="retries_exhausted: TransientError: database unavailable",
    )
    probe = ProbeSettings(
        amqp_url=amqp_url,
        namespace=namespace,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/probe.sqlite3",
    )
    async with running_host(
        probe, handlers=probe_registry(), command_queues=("workflow",), migrations=MIGRATIONS
    ) as worker:
        # The task as the registry knows it after its last attempt, and its dead letter.
        await worker.publisher.publish(
            command.caused("task.dead_lettered", failed, task_id=command.task_id)
        )
        await worker.publisher.publish_raw(
            "",
            topology.dlq(topology.queue("workflow")),
            aio_pika.Message(
                json.dumps(command.model_dump(mode="json")).encode(),
                message_id=str(command.id),
                headers={"x-dead-letter-reason": "retries_exhausted", "x-attempts": 4},
            ),
        )

        async def archived() -> str | None:
            r = await gateway.client.get("/api/dead-letters/", headers=gateway.auth())
            items = r.json()["items"]
            ready = items and await status_of(gateway, command.task_id) == "DEAD_LETTERED"
            return str(items[0]["id"]) if ready else None

        letter = await eventually(archived, message="task DEAD_LETTERED, its dead letter archived")

        # Hold the gateway's relay: whatever the replay sends must wait in the outbox.
        state.host.relay.stop()
        replay = await gateway.client.post(
            f"/api/dead-letters/{letter}/replay", headers=gateway.auth()
        )
        assert replay.status_code == 200, replay.text
        async with state.host.sessions() as session:
            waiting = await session.scalar(select(func.count()).select_from(outbox))
        async with worker.sessions() as session:
            ran = await session.scalar(select(func.count()).select_from(effects))
        assert (waiting, ran) == (1, 0)  # committed with the task's reset, not yet published
        assert await status_of(gateway, command.task_id) == "QUEUED"

        assert await state.host.relay.relay_once() == 1

        async def succeeded() -> bool:
            return await status_of(gateway, command.task_id) == "SUCCEEDED"

        await eventually(succeeded, message="the replayed task SUCCEEDED")
        async with worker.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(effects)) == 1
