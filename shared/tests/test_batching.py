"""Micro-batches: what one message of a batch does to the others (nothing) and to itself."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.inbox import mark_cancelled
from prs_shared.messaging.messages import (
    CANCEL_TASK,
    TASK_OUTCOMES,
    CancelTask,
    TaskLifecycle,
    TaskOutcomes,
    TaskStatus,
)
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.runtime import REASON_HEADER
from prs_shared.messaging.topology import Topology
from prs_shared.service import ServiceHost
from prs_shared.testing.fixtures import BrokerProbe, eventually
from prs_shared.testing.probe import EFFECT, Effect, effects

pytestmark = pytest.mark.asyncio

# Long enough for every message a test publishes to join the first delivery's batch.
GATHER = 0.5


def effect(key: str, **fields: object) -> Envelope:
    return Envelope(
        type=EFFECT.type,
        payload=Effect(key=key, **fields).model_dump(),  # type: ignore[arg-type]
        task_id=uuid.uuid4(),
    )


def statuses(events: list[Envelope], task_id: uuid.UUID | None) -> list[TaskStatus]:
    return [
        TaskLifecycle.model_validate(e.payload).status
        for e in events
        if e.task_id == task_id and e.type.startswith("task.")
    ]


def final(events: list[Envelope], *messages: Envelope) -> bool:
    done = {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED}
    return all(done & set(statuses(events, m.task_id)) for m in messages)


async def settled(host: ServiceHost) -> bool:
    gauge = REGISTRY.get_sample_value("prs_tasks_in_flight", {"service": host.service})
    return host.runtime.in_flight == 0 and gauge == 0


async def effect_attempts(host: ServiceHost, key: str) -> list[int]:
    async with host.sessions() as session:
        rows = await session.execute(select(effects.c.attempt).where(effects.c.key == key))
        return [r.attempt for r in rows]


def batches(host: ServiceHost) -> tuple[int, int]:
    """(batches committed, batches rolled back and handled message by message)."""
    return host.runtime.committed, host.runtime.rolled_back


async def test_a_transient_failure_in_a_batch_retries_that_message_and_the_others_commit_once(
    probe_host, publisher: Publisher, tap
) -> None:
    events = await tap("task.#")
    ok = [effect(f"batch-ok-{i}") for i in range(3)]
    flaky = effect("batch-flaky", fail_times=1)
    async with probe_host(batch_size=16, batch_wait=GATHER) as host:
        await publisher.publish_many([ok[0], flaky, *ok[1:]])
        seen = await events.wait_for(lambda s: final(s, flaky, *ok), timeout=30)
        for m in ok:
            assert await effect_attempts(host, m.payload["key"]) == [1]
            assert statuses(seen, m.task_id) == [TaskStatus.SUCCEEDED]
        assert await effect_attempts(host, "batch-flaky") == [2]
        assert statuses(seen, flaky.task_id) == [TaskStatus.RETRYING, TaskStatus.SUCCEEDED]
        # One batch of four rolled back; the retry came back alone and committed as a batch.
        assert batches(host) == (1, 1)
        await eventually(lambda: settled(host), message="nothing in flight")


async def test_the_same_message_twice_in_one_batch_has_its_effect_once(
    probe_host, publisher: Publisher, tap
) -> None:
    events = await tap("task.succeeded")
    twice = effect("batch-twice")
    other = effect("batch-other")
    async with probe_host(batch_size=16, batch_wait=GATHER) as host:
        await publisher.publish_many([twice, other, twice])
        seen = await events.wait_for(lambda s: len(s) >= 3)
        assert await effect_attempts(host, "batch-twice") == [1]
        assert await effect_attempts(host, "batch-other") == [1]
        results = [TaskLifecycle.model_validate(e.payload).result for e in seen]
        assert results.count({"key": "batch-twice", "worker": host.worker, "attempt": 1}) == 2
        assert batches(host) == (1, 0)  # the copy was skipped inside the batch
        await eventually(lambda: settled(host), message="nothing in flight")
        assert host.runtime.processed == 3


async def test_a_permanent_failure_in_a_batch_dead_letters_only_that_message(
    probe_host, publisher: Publisher, tap, broker: BrokerProbe, topology: Topology
) -> None:
    events = await tap("task.#")
    before, after = effect("batch-before"), effect("batch-after")
    refused = effect("batch-refused", permanent=True)
    async with probe_host(batch_size=16, batch_wait=GATHER) as host:
        await publisher.publish_many([before, refused, after])
        seen = await events.wait_for(lambda s: final(s, before, refused, after))
        dead = await eventually(
            lambda: broker.get_all(topology.dlq(topology.queue("workflow"))),
            message="message in the DLQ",
        )
        assert await effect_attempts(host, "batch-before") == [1]
        assert await effect_attempts(host, "batch-after") == [1]
        assert await effect_attempts(host, "batch-refused") == []
        assert statuses(seen, refused.task_id) == [TaskStatus.FAILED]
        assert batches(host) == (0, 1)
        await eventually(lambda: settled(host), message="nothing in flight")
    assert [d.message_id for d in dead] == [str(refused.id)]
    assert dead[0].headers[REASON_HEADER] == "permanent_error"


async def test_cancelled_commands_in_a_batch_are_skipped(
    probe_host, publisher: Publisher, tap
) -> None:
    events = await tap("task.#")
    marked = effect("batch-marked")  # cancelled before it arrives
    cancelled = effect("batch-cancelled")  # cancelled by a command just ahead of it
    kept = effect("batch-kept")
    cancel = Envelope(
        type=CANCEL_TASK.type,
        payload=CancelTask(task_id=cancelled.task_id, message_id=cancelled.id).model_dump(
            mode="json"
        ),
    )
    async with probe_host(batch_size=16, batch_wait=GATHER) as host:
        async with host.sessions() as session, session.begin():
            await mark_cancelled(session, str(marked.id), str(marked.task_id))
        await publisher.publish(cancel, queue="workflow")
        await publisher.publish_many([cancelled, marked, kept])
        seen = await events.wait_for(lambda s: final(s, marked, cancelled, kept))
        assert statuses(seen, marked.task_id) == [TaskStatus.CANCELLED]
        assert statuses(seen, cancelled.task_id) == [TaskStatus.CANCELLED]
        assert statuses(seen, kept.task_id) == [TaskStatus.SUCCEEDED]
        for key, attempts in [("batch-marked", []), ("batch-cancelled", []), ("batch-kept", [1])]:
            assert await effect_attempts(host, key) == attempts
        # The cancellation and its command claim the same inbox row: the batch rolls back, and
        # message by message, in delivery order, the cancellation comes first.
        assert batches(host) == (0, 1)
        await eventually(lambda: settled(host), message="nothing in flight")


async def test_a_batch_unfinished_after_the_grace_period_rolls_back_and_returns_to_the_queue(
    probe_host, publisher: Publisher, tap, count_effects
) -> None:
    events = await tap("task.started")
    keys = ("batch-slow", "batch-behind", "batch-late")
    slow, behind = effect("batch-slow", sleep_ms=1500), effect("batch-behind")
    # Arrives while the batch runs and starts a second batch beside it; it is unfinished too.
    late = effect("batch-late", sleep_ms=1500)
    async with probe_host(batch_size=16, shutdown_grace=0.3) as host:
        await publisher.publish_many([slow, behind])
        await events.wait_for(lambda s: bool(statuses(s, slow.task_id)))
        await publisher.publish(late)

        async def all_three_in_flight() -> bool:
            return host.runtime.in_flight == 3

        await eventually(all_three_in_flight, message="the late one delivered")
    assert await settled(host)
    assert [await count_effects(key) for key in keys] == [0, 0, 0]
    async with probe_host(batch_size=16) as again:

        async def all_done() -> bool:
            return all([await effect_attempts(again, key) == [1] for key in keys])

        await eventually(all_done, message="the returned batch handled by the next worker")


async def test_a_committed_batch_announces_its_outcomes_in_one_message_and_a_lone_task_its_own(
    probe_host, publisher: Publisher, tap
) -> None:
    events = await tap("task.#")
    batch = [effect(f"batch-announced-{i}") for i in range(5)]
    lone = effect("batch-lone")
    async with probe_host(batch_size=16, batch_wait=GATHER) as host:
        await publisher.publish_many(batch)
        await events.wait_for(lambda s: final(s, *batch))
        await publisher.publish(lone)
        seen = await events.wait_for(lambda s: final(s, lone))
        assert batches(host) == (2, 0)
    [outcomes, own] = [e for e in events.wire if e.task_id == lone.task_id or e.task_id is None]
    assert outcomes.type == TASK_OUTCOMES.type
    told = TaskOutcomes.model_validate(outcomes.payload).outcomes
    assert sorted(o.task_id for o in told) == sorted(m.task_id for m in batch)  # type: ignore[type-var]
    by_task = {o.task_id: o for o in told}
    for m in batch:
        o = by_task[m.task_id]  # type: ignore[index]
        assert (o.status, o.causation_id, o.correlation_id) == (
            TaskStatus.SUCCEEDED,
            m.id,
            m.correlation_id,
        )
        assert o.result == {"key": m.payload["key"], "worker": host.worker, "attempt": 1}
    assert len({o.event_id for o in told}) == len(batch)
    assert own.type == "task.succeeded"
    # A subscriber's tap reads both forms alike: one task.succeeded per task.
    assert sorted(e.task_id for e in seen if e.type == "task.succeeded") == sorted(  # type: ignore[type-var]
        m.task_id for m in [*batch, lone]
    )
