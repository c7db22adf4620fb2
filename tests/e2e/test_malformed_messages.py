"""A malformed message at every consumer of the five running services: each is dead-lettered
with its reason and archived by the gateway, no queue stalls, and ordinary work goes on."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import aio_pika
import pytest

from gateway.broker_view import queue_names
from prs_shared.messaging.topology import Topology

from .conftest import SERVICES, Stack, output_of

T = TypeVar("T")


async def consumed(amqp_url: str, queues: list[str]) -> dict[str, tuple[int, int]]:
    """(messages, consumers) of each queue."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        found = {}
        for name in queues:
            q = await channel.declare_queue(name, passive=True)
            result = q.declaration_result
            found[name] = (int(result.message_count), int(result.consumer_count))
        return found
    finally:
        await connection.close()


async def publish_poison(amqp_url: str, queues: list[str]) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        for name in queues:
            wrong_payload = {
                "id": str(uuid.uuid4()),
                "type": "diagnostic.ping",
                "occurred_at": datetime.now(UTC).isoformat(),
                "correlation_id": str(uuid.uuid4()),
                "payload": {"note": ["not", "a", "string"], "extra": True},
            }
            for body in (b"\xff not json at all", json.dumps(wrong_payload).encode()):
                await channel.default_exchange.publish(
                    aio_pika.Message(body, message_id=str(uuid.uuid4())),
                    routing_key=name,
                    mandatory=True,
                )
    finally:
        await connection.close()


def wait_until(check: Callable[[], T | None], timeout: float, what: str, stack: Stack) -> T:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    pytest.fail(f"{what} within {timeout}s (last: {last})\n{stack.logs()}")


def wait_for_consumers(stack: Stack, amqp_url: str, queues: list[str]) -> None:
    """Until each queue has a consumer: a message published before would wait, not be handled."""

    def all_consumed() -> bool | None:
        stats = asyncio.run(consumed(amqp_url, queues))
        return all(consumers >= 1 for _, consumers in stats.values()) or None

    wait_until(all_consumed, 60, "a consumer on every queue", stack)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_malformed_message_at_every_consumer_is_dead_lettered_and_nothing_stalls(
    stack: Stack, amqp_url: str, namespace: str
) -> None:
    stack.wait_ready()
    queues = queue_names(Topology(namespace=namespace))
    wait_for_consumers(stack, amqp_url, queues)
    asyncio.run(publish_poison(amqp_url, queues))

    with stack.http() as http:

        def archived() -> dict[str, int] | None:
            page = http.get("/api/dead-letters/", params={"limit": 500}).json()
            per_queue: dict[str, int] = page["by_queue"]
            return per_queue if sum(per_queue.values()) == 2 * len(queues) else None

        per_queue = wait_until(archived, 60, "every malformed message archived", stack)
        assert set(per_queue) == set(queues)
        assert set(per_queue.values()) == {2}
        reasons = {
            item["reason"]
            for item in http.get("/api/dead-letters/", params={"limit": 500}).json()["items"]
        }
        assert reasons <= {"invalid_envelope", "schema_mismatch", "unknown_type"}, reasons
        assert "invalid_envelope" in reasons

    stats = asyncio.run(consumed(amqp_url, queues))
    assert all(messages == 0 and consumers >= 1 for messages, consumers in stats.values()), stats
    stack.assert_all_running("after the malformed messages")
    result = stack.prs("manage-background-tasks", "--action=test")
    assert result.returncode == 0, f"{output_of(result)}\n{stack.logs()}"
    for service in SERVICES:
        assert f" {service} " in result.stdout
