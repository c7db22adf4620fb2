"""The consumer runtime against the real RabbitMQ, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import aio_pika
import pytest
from prometheus_client import REGISTRY

from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.messages import TaskLifecycle, TaskStatus
from prs_shared.messaging.publisher import Publisher, PublishError
from prs_shared.messaging.runtime import ATTEMPTS_HEADER, ERROR_HEADER, REASON_HEADER
from prs_shared.messaging.topology import Topology
from prs_shared.service import ServiceHost
from prs_shared.testing.fixtures import BrokerProbe, eventually
from prs_shared.testing.probe import EFFECT, Effect

pytestmark = pytest.mark.asyncio

# Per message on both databases and batched on SQLite alone, for a test whose batched variant does
# not depend on the database.
batched_on_sqlite_only = pytest.mark.parametrize(
    ("database_url", "batch_size"),
    [("sqlite", 1), ("postgresql", 1), ("sqlite", 16)],
    ids=["sqlite", "postgresql", "sqlite-batch16"],
    indirect=True,
)


def effect(key: str, **fields: object) -> Envelope:
    return Envelope(
        type=EFFECT.type,
        payload=Effect(key=key, **fields).model_dump(),  # type: ignore[arg-type]
        task_id=uuid.uuid4(),
    )


async def settled(host: ServiceHost) -> bool:
    """Every delivery acked and counted out of flight, by the runtime and by the gauge."""
    gauge = REGISTRY.get_sample_value("prs_tasks_in_flight", {"service": host.service})
    return host.runtime.in_flight == 0 and gauge == 0


def statuses(events: list[Envelope], task_id: uuid.UUID) -> list[TaskStatus]:
    return [
        TaskLifecycle.model_validate(e.payload).status
        for e in events
        if e.task_id == task_id and e.type.startswith("task.")
    ]


async def test_a_published_task_is_handled_acked_and_reported_succeeded_with_its_correlation_id(
    probe_host,
    publisher: Publisher,
    tap,
    count_effects,
    broker: BrokerProbe,
    topology: Topology,
    batch_size: int,
) -> None:
    events = await tap("task.#")
    message = effect("happy")
    async with probe_host(batch_size=batch_size) as host:
        await publisher.publish(message)
        seen = await events.wait_for(lambda s: TaskStatus.SUCCEEDED in statuses(s, message.task_id))
        depth = await broker.queue(topology.queue("workflow"))
        await eventually(lambda: settled(host), message="nothing in flight")
    assert await count_effects("happy") == 1
    succeeded = next(e for e in seen if e.type == "task.succeeded")
    assert succeeded.correlation_id == message.correlation_id
    assert succeeded.causation_id == message.id
    lifecycle = TaskLifecycle.model_validate(succeeded.payload)
    assert lifecycle.result == {"key": "happy", "worker": lifecycle.worker, "attempt": 1}
    assert depth.messages == 0  # acked, nothing left behind


async def test_an_unroutable_publish_raises(publisher: Publisher, topology: Topology) -> None:
    orphan = aio_pika.Message(b"{}", message_id="orphan")
    with pytest.raises(PublishError, match="NO_ROUTE"):
        await publisher.publish_raw(topology.commands_exchange, "no-such-queue", orphan)


# The batch's rollback after a handler's error runs on both databases in test_batching; what
# follows it is the per-message path.
@batched_on_sqlite_only
async def test_a_transient_failure_is_retried_with_growing_delays_then_dead_lettered(
    probe_host,
    publisher: Publisher,
    tap,
    broker: BrokerProbe,
    topology: Topology,
    count_effects,
    batch_size: int,
) -> None:
    events = await tap("task.#")
    message = effect("flaky", fail_times=99)
    async with probe_host(max_retries=3, retry_base_delay=0.2, batch_size=batch_size):
        await publisher.publish(message)
        seen = await events.wait_for(
            lambda s: TaskStatus.DEAD_LETTERED in statuses(s, message.task_id), timeout=30
        )
        dead = await eventually(
            lambda: broker.get_all(topology.dlq(topology.queue("workflow"))),
            message="message in the DLQ",
        )
    assert statuses(seen, message.task_id).count(TaskStatus.RETRYING) == 3
    failures = [
        TaskLifecycle.model_validate(e.payload)
        for e in seen
        if e.task_id == message.task_id and e.type in ("task.retrying", "task.dead_lettered")
    ]
    assert [f.attempt for f in failures] == [1, 2, 3, 4]  # the first try and three retries
    times = [f.at for f in failures]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    # Equal jitter: the wait before retry n is at least half of base * 2^(n-1), so it grows.
    for n, gap in enumerate(gaps, start=1):
        assert gap >= 0.2 * 2 ** (n - 1) / 2 * 0.95, gaps
    assert len(dead) == 1
    headers = dead[0].headers
    assert headers[REASON_HEADER] == "retries_exhausted"
    assert headers[ATTEMPTS_HEADER] == 4
    assert "fails attempt 4" in str(headers[ERROR_HEADER])
    assert await count_effects("flaky") == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid_envelope"),
        (
            Envelope(type="no.such.type", task_id=uuid.uuid4()).model_dump_json().encode(),
            "unknown_type",
        ),
        (
            Envelope(type=EFFECT.type, payload={"key": 7, "surprise": True}, task_id=uuid.uuid4())
            .model_dump_json()
            .encode(),
            "schema_mismatch",
        ),
        (effect("refused", permanent=True).model_dump_json().encode(), "permanent_error"),
    ],
    ids=["malformed", "unknown-type", "schema-mismatch", "permanent-error"],
)
# Unusable messages are dead-lettered before they could join a batch.
@batched_on_sqlite_only
async def test_unusable_messages_and_permanent_errors_are_dead_lettered_at_once_and_consuming_goes_on(
    body: bytes,
    reason: str,
    probe_host,
    publisher: Publisher,
    broker: BrokerProbe,
    topology: Topology,
    count_effects,
    batch_size: int,
) -> None:
    async with probe_host(max_retries=3, batch_size=batch_size):
        await publisher.publish_raw(
            topology.commands_exchange, "workflow", aio_pika.Message(body, message_id="bad")
        )
        dead = await eventually(
            lambda: broker.get_all(topology.dlq(topology.queue("workflow"))),
            message="message in the DLQ",
        )
        # The consumer is still there and still working.
        await publisher.publish(effect("after-bad"))
        await eventually(lambda: count_effects("after-bad"), message="next message handled")
    assert dead[0].headers[REASON_HEADER] == reason
    assert dead[0].headers[ATTEMPTS_HEADER] == 1
    assert dead[0].body == body


async def test_the_same_message_delivered_twice_has_its_effect_once(
    probe_host, publisher: Publisher, tap, count_effects, batch_size: int
) -> None:
    events = await tap("task.succeeded")
    message = effect("twice")
    async with probe_host(batch_size=batch_size):
        await publisher.publish(message)
        await publisher.publish(message)
        await events.wait_for(lambda s: len(s) >= 2)
    assert await count_effects("twice") == 1
    # Both deliveries are reported as the same success, with the stored result.
    results = {str(TaskLifecycle.model_validate(e.payload).result) for e in events.seen}
    assert len(results) == 1


async def test_outbox_messages_leave_after_commit(
    probe_host, publisher: Publisher, tap, batch_size: int
) -> None:
    events = await tap("test.effect_recorded")
    async with probe_host(batch_size=batch_size):
        await publisher.publish(effect("emits", emit=True))
        seen = await events.wait_for(lambda s: len(s) == 1)
    assert seen[0].payload == {"key": "emits"}


async def test_a_retried_message_returns_only_to_the_queue_it_came_from(
    publisher: Publisher, broker: BrokerProbe, topology: Topology
) -> None:
    from datetime import timedelta

    from prs_shared.messaging.topology import RETRY_QUEUE_HEADER

    origin = topology.queue("workflow")
    retry = aio_pika.Message(
        b"{}",
        message_id="back-home",
        headers={RETRY_QUEUE_HEADER: origin},
        expiration=timedelta(milliseconds=50),
    )
    await publisher.publish_raw("", topology.delay_queue(250), retry)

    async def arrived() -> bool:
        return (await broker.queue(origin)).messages == 1

    await eventually(arrived, message="message back in its queue")
    for other in topology.command_queues:
        if topology.queue(other) != origin:
            assert (await broker.queue(topology.queue(other))).messages == 0, other


async def test_a_result_too_large_to_announce_is_replaced_by_its_size_and_the_task_succeeds(
    probe_host, publisher: Publisher, tap, count_effects
) -> None:
    events = await tap("task.#")
    message = effect("big-result", result_bytes=2 * 1024 * 1024)
    async with probe_host() as host:
        await publisher.publish(message)
        seen = await events.wait_for(lambda s: TaskStatus.SUCCEEDED in statuses(s, message.task_id))
        await eventually(lambda: settled(host), message="nothing in flight")
    succeeded = next(e for e in seen if e.type == "task.succeeded")
    result = TaskLifecycle.model_validate(succeeded.payload).result
    assert result is not None
    assert result["result_omitted"] == "too large to announce"
    assert result["bytes"] > 2 * 1024 * 1024
    assert await count_effects("big-result") == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_work_cut_off_by_the_grace_period_announces_nothing_after_the_broker_is_gone(
    probe_host, publisher: Publisher, tap, broker: BrokerProbe, topology: Topology, caplog
) -> None:
    """A task still running when the grace period ends is cancelled and goes back to its
    queue; its pending STARTED announcement goes with it instead of firing on a closed channel."""
    events = await tap("task.#")
    slow = effect("cut-off", sleep_ms=10_000)
    async with probe_host(shutdown_grace=0.2, started_announce_delay=0.6) as host:
        await publisher.publish(slow)
        await eventually(lambda: _running(host), message="the slow task running")
    # The host is stopped; an orphaned announcement would fire now.
    await asyncio.sleep(1.0)
    assert not [r for r in caplog.records if "could not announce" in r.getMessage()]
    assert statuses(await events.drain(), slow.task_id) == []
    queued = await broker.queue(topology.queue("workflow"))
    assert queued.messages == 1  # returned unsettled, for the next worker


async def _running(host: ServiceHost) -> bool:
    return host.runtime.in_flight == 1
