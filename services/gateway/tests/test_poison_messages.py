"""Poison at the gateway's own consumers: the registry and the dead-letter archive.

Each message here once stopped a consumer (a batch requeued forever, or a delivery left unacked).
Now each is dead-lettered or stored with what it carried, and ordinary work goes on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aio_pika
import httpx
import pytest

from prs_shared.messaging.topology import Topology
from prs_shared.testing.fixtures import BrokerProbe, eventually

from .conftest import Gateway

pytestmark = pytest.mark.asyncio

REGISTRY_QUEUE = "gateway-registry.events"


@pytest.fixture
def gateway_overrides() -> dict[str, object]:
    return {"retry_base_delay": 0.05, "max_retries": 2}


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(amqp_url)
    yield await connection.channel(publisher_confirms=True, on_return_raises=True)
    await connection.close()


def lifecycle(status: str = "SUCCEEDED", **fields: Any) -> dict[str, Any]:
    payload = {
        "task_id": str(uuid.uuid4()),
        "task_type": "diagnostic.ping",
        "status": status,
        "queue": "system",
        "service": "probe",
        "worker": "probe:1",
        "attempt": 1,
        "at": datetime.now(UTC).isoformat(),
        "duration_ms": 1.0,
    }
    payload.update(fields)
    return payload


def envelope(type_: str, payload: dict[str, Any]) -> bytes:
    body = {
        "id": str(uuid.uuid4()),
        "type": type_,
        "occurred_at": datetime.now(UTC).isoformat(),
        "correlation_id": str(uuid.uuid4()),
        "task_id": payload.get("task_id"),
        "payload": payload,
    }
    # Python's json writes 1e300 and 2**70 as the JSON numbers they are.
    return json.dumps(body).encode()


async def publish_event(
    channel: aio_pika.abc.AbstractChannel, topology: Topology, type_: str, body: bytes
) -> None:
    exchange = await channel.get_exchange(topology.events_exchange)
    await exchange.publish(
        aio_pika.Message(body, message_id=str(uuid.uuid4()), type=type_),
        routing_key=type_,
        mandatory=True,
    )


async def dead_letters(gateway: Gateway) -> list[dict[str, Any]]:
    response = await gateway.client.get("/api/dead-letters/?limit=100", headers=gateway.auth())
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def diagnostic_succeeds(gateway: Gateway) -> None:
    """An ordinary task still goes all the way to SUCCEEDED in the registry."""
    queued = await gateway.client.post(
        "/api/background-tasks/queue-diagnostic/",
        json={"services": ["gateway"]},
        headers=gateway.auth(),
    )
    assert queued.status_code == 202, queued.text
    url = queued.json()["tasks"]["gateway"]["status_url"]

    async def succeeded() -> bool:
        r = await gateway.client.get(url, headers=gateway.auth())
        return bool(r.json()["status"] == "SUCCEEDED")

    await eventually(succeeded, timeout=30, message="an ordinary task SUCCEEDED")


async def test_poison_lifecycle_events_and_heartbeats_are_dead_lettered_and_the_registry_moves_on(
    gateway: Gateway, channel: aio_pika.abc.AbstractChannel, namespace: str
) -> None:
    topology = Topology(namespace=namespace)
    naive = datetime.now(UTC).replace(tzinfo=None).isoformat()
    ok = lifecycle()
    poison = {
        "huge duration": (
            "task.succeeded",
            envelope("task.succeeded", lifecycle(duration_ms=1e300)),
        ),
        "naive time": ("task.started", envelope("task.started", lifecycle("STARTED", at=naive))),
        "huge attempt": (
            "task.failed",
            envelope("task.failed", lifecycle("FAILED", attempt=2**70)),
        ),
        "huge in_flight": (
            "service.heartbeat",
            envelope(
                "service.heartbeat",
                {
                    "service": "probe",
                    "worker": "probe:1",
                    "started_at": datetime.now(UTC).isoformat(),
                    "queues": [],
                    "in_flight": 2**70,
                    "processed": 0,
                },
            ),
        ),
        "not json": ("task.succeeded", b"\xff{ not json"),
    }
    # All in one burst, with a good event among them, so they land in the same batch.
    for type_, body in poison.values():
        await publish_event(channel, topology, type_, body)
    await publish_event(channel, topology, "task.succeeded", envelope("task.succeeded", ok))

    async def all_dead_lettered() -> list[dict[str, Any]] | None:
        items = [d for d in await dead_letters(gateway) if d["queue"].endswith(REGISTRY_QUEUE)]
        return items if len(items) == len(poison) else None

    letters = await eventually(all_dead_lettered, timeout=30, message="every poison archived")
    assert sorted(d["reason"] for d in letters) == sorted(
        ["schema_mismatch"] * 4 + ["invalid_envelope"]
    )

    # The good event of the same burst is folded: its task exists with its outcome. The
    # archive's commit and the registry's are apart, so it may land a moment after the poison.
    async def folded() -> httpx.Response | None:
        answer = await gateway.client.get(
            f"/api/background-tasks/{ok['task_id']}/status/", headers=gateway.auth()
        )
        return answer if answer.status_code == 200 else None

    status = await eventually(folded, timeout=30, message="the good event folded")
    assert status.json()["status"] == "SUCCEEDED"
    assert status.json()["queued_at"] is not None  # no ghost row without a queue time
    await diagnostic_succeeds(gateway)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_event_the_database_refuses_is_retried_then_dead_lettered_alone(
    gateway: Gateway, channel: aio_pika.abc.AbstractChannel, namespace: str
) -> None:
    # Valid by its schema, refused by PostgreSQL (no NUL in text): only the database can tell.
    topology = Topology(namespace=namespace)
    bad = lifecycle("FAILED", error="nul \x00 inside")
    good = lifecycle()
    await publish_event(channel, topology, "task.failed", envelope("task.failed", bad))
    await publish_event(channel, topology, "task.succeeded", envelope("task.succeeded", good))

    async def dead() -> list[dict[str, Any]] | None:
        items = [d for d in await dead_letters(gateway) if d["queue"].endswith(REGISTRY_QUEUE)]
        return items or None

    [letter] = await eventually(dead, timeout=30, message="the refused event dead-lettered")
    assert letter["reason"] == "retries_exhausted"
    ok = await gateway.client.get(
        f"/api/background-tasks/{good['task_id']}/status/", headers=gateway.auth()
    )
    assert ok.json()["status"] == "SUCCEEDED"
    await diagnostic_succeeds(gateway)


async def test_dead_letters_with_any_header_or_body_are_archived_and_none_is_left_behind(
    gateway: Gateway,
    channel: aio_pika.abc.AbstractChannel,
    namespace: str,
    broker: BrokerProbe,
) -> None:
    topology = Topology(namespace=namespace)
    dlq = topology.dlq(topology.queue("workflow"))
    odd: list[aio_pika.Message] = [
        aio_pika.Message(
            b'{"not": "an envelope"}',
            message_id="odd-decimal",
            headers={
                "x-dead-letter-reason": "permanent_error",
                "x-attempts": "\u00b2",  # "²": str.isdigit says yes, int() says no
                "price": Decimal("1.10"),
                "nested": {"amount": Decimal("2.5"), "list": [Decimal("1"), 2**40]},
            },
        ),
        aio_pika.Message(
            b"\xff\xfe binary \x00",
            message_id="odd-bytes",
            headers={
                "blob": bytearray(b"\xff\xfe\x00"),  # not UTF-8: kept as base64
                "when": datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
                "x-last-error": "nul \x00 inside",
                "x-attempts": 10**12,
            },
        ),
        aio_pika.Message(b""),  # no id, no headers, no body
    ]
    for message in odd:
        await channel.default_exchange.publish(message, routing_key=dlq, mandatory=True)

    async def archived() -> list[dict[str, Any]] | None:
        items = await dead_letters(gateway)
        return items if len(items) == len(odd) else None

    items = await eventually(archived, timeout=30, message="every odd dead letter archived")
    by_id = {i["message_id"]: i for i in items}
    assert by_id["odd-decimal"]["reason"] == "permanent_error"
    assert by_id["odd-decimal"]["attempts"] == 1
    assert by_id["odd-bytes"]["reason"] == "unknown"
    detail = await gateway.client.get(
        f"/api/dead-letters/{by_id['odd-decimal']['id']}", headers=gateway.auth()
    )
    assert detail.status_code == 200, detail.text
    headers = detail.json()["headers"]
    assert headers["price"] == "1.10"
    assert headers["nested"] == {"amount": "2.5", "list": ["1", 2**40]}
    odd_bytes = await gateway.client.get(
        f"/api/dead-letters/{by_id['odd-bytes']['id']}", headers=gateway.auth()
    )
    assert odd_bytes.json()["headers"]["blob"] == "base64://4A"
    assert odd_bytes.json()["headers"]["x-last-error"] == "nul \ufffd inside"
    assert (await broker.queue(dlq)).messages == 0
    assert (await broker.queue(topology.parked_queue)).messages == 0
    await diagnostic_succeeds(gateway)
