"""Tasks published by any service reach the registry: SUCCEEDED, FAILED or DEAD_LETTERED."""

from __future__ import annotations

import uuid

import aio_pika
import pytest

from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.topology import Topology
from prs_shared.testing.fixtures import eventually
from prs_shared.testing.hosts import running_host
from prs_shared.testing.probe import EFFECT, MIGRATIONS, Effect, probe_registry
from prs_shared.testing.worker import ProbeSettings

from .conftest import Gateway

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize(
    ("fields", "final", "error_part"),
    [
        ({}, "SUCCEEDED", None),
        ({"permanent": True}, "FAILED", "permanent_error"),
        ({"fail_times": 99}, "DEAD_LETTERED", "retries_exhausted"),
    ],
    ids=["succeeded", "failed", "dead-lettered"],
)
async def test_a_task_published_directly_ends_in_the_registry_with_its_outcome(
    fields: dict[str, object],
    final: str,
    error_part: str | None,
    gateway: Gateway,
    amqp_url: str,
    namespace: str,
    tmp_path: object,
) -> None:
    probe = ProbeSettings(
        amqp_url=amqp_url,
        namespace=namespace,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/probe.sqlite3",
        max_retries=2,
        retry_base_delay=0.1,
    )
    topology = Topology(namespace=namespace)
    message = Envelope(
        type=EFFECT.type,
        payload=Effect(key="direct", **fields).model_dump(),  # type: ignore[arg-type]
        task_id=uuid.uuid4(),
        organization_id=None,
    )
    connection = await aio_pika.connect(amqp_url)
    try:
        async with running_host(
            probe, handlers=probe_registry(), command_queues=("workflow",), migrations=MIGRATIONS
        ):
            publisher = await Publisher.open(connection, topology)
            await publisher.publish(message)

            async def outcome() -> dict[str, object] | None:
                r = await gateway.client.get(
                    f"/api/background-tasks/{message.task_id}/status/", headers=gateway.auth()
                )
                body: dict[str, object] = r.json()
                return body if r.status_code == 200 and body["status"] == final else None

            status = await eventually(outcome, timeout=30, message=f"task {final}")
    finally:
        await connection.close()
    assert status["correlation_id"] == str(message.correlation_id)
    assert status["service"] == "probe"
    if error_part is None:
        assert status["successful"] is True
        assert status["error"] is None
    else:
        assert status["successful"] is False
        assert error_part in str(status["error"])
    if final == "DEAD_LETTERED":
        assert status["attempts"] == 3
