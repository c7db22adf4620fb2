"""Time limits: the soft limit a handler honours, the hard one the runtime enforces, and settings.

The first tests run the runtime's ``dispatch`` with fake handlers; the last ones run the probe
service against the real RabbitMQ and database.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from prs_shared.messaging.delivery import Delivery
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.handlers import Handler, HandlerContext, HandlerRegistry
from prs_shared.messaging.headers import error_text
from prs_shared.messaging.messages import TaskLifecycle, TaskStatus
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.runtime import ATTEMPTS_HEADER, ERROR_HEADER, REASON_HEADER
from prs_shared.messaging.subscription import Result, Scope, dispatch
from prs_shared.messaging.time_limits import (
    HardTimeLimitExceeded,
    SoftTimeLimitExceeded,
    TimeLimit,
    TimeLimits,
)
from prs_shared.messaging.topology import Topology
from prs_shared.settings import ServiceSettings
from prs_shared.testing.fixtures import BrokerProbe, eventually
from prs_shared.testing.probe import EFFECT, Effect

EffectHandler = Callable[[Effect, HandlerContext, None], Awaitable[dict[str, Any] | None]]


def effect(key: str, **fields: object) -> Envelope:
    return Envelope(
        type=EFFECT.type,
        payload=Effect(key=key, **fields).model_dump(),  # type: ignore[arg-type]
        task_id=uuid.uuid4(),
    )


def delivery_of(envelope: Envelope) -> Delivery:
    payload = Effect.model_validate(envelope.payload)
    # dispatch reads neither the AMQP message nor the session: these fakes never are used.
    return Delivery("workflow", cast(AbstractIncomingMessage, None), 1, envelope, payload)


async def run(fn: EffectHandler, limit: TimeLimit, *envelopes: Envelope) -> list[Result]:
    work = dispatch(
        HandlerRegistry([Handler(EFFECT, fn, None)]),
        TimeLimits(overrides={EFFECT.type: limit}),
    )
    scope = Scope(cast(AsyncSession, None), "probe", "probe:1")
    return list(await work([delivery_of(e) for e in envelopes], scope))


async def test_a_handler_that_catches_its_soft_limit_cleans_up_and_returns_its_result() -> None:
    cleaned: list[str] = []

    async def patient(payload: Effect, ctx: HandlerContext, deps: None) -> dict[str, Any]:
        try:
            async with ctx.soft_limit():
                await asyncio.sleep(3600)
        except SoftTimeLimitExceeded as exc:
            cleaned.append(str(exc))
            return {"key": payload.key, "stopped": "at the soft limit"}
        return {"key": payload.key, "stopped": "never"}

    results = await run(patient, TimeLimit(0.05, 30), effect("soft"))
    assert results == [{"key": "soft", "stopped": "at the soft limit"}]
    assert cleaned == ["soft time limit of 0.05s exceeded"]


async def test_a_handler_can_watch_its_soft_limit_between_steps() -> None:
    async def stepwise(payload: Effect, ctx: HandlerContext, deps: None) -> dict[str, Any]:
        assert ctx.deadline is not None
        assert ctx.time_left() is not None
        steps = 0
        while not ctx.soft_limit_reached():
            steps += 1
            await asyncio.sleep(0.01)
        return {"steps": steps, "left": ctx.time_left()}

    [result] = await run(stepwise, TimeLimit(0.05, 30), effect("steps"))
    assert result is not None
    assert result["steps"] >= 1
    assert result["left"] <= 0


async def test_a_soft_limit_the_handler_lets_go_fails_the_delivery_as_a_time_limit() -> None:
    async def careless(payload: Effect, ctx: HandlerContext, deps: None) -> None:
        async with ctx.soft_limit():
            await asyncio.sleep(3600)

    with pytest.raises(SoftTimeLimitExceeded) as raised:
        await run(careless, TimeLimit(0.05, 30), effect("soft-escapes"))
    assert error_text(raised.value) == "time_limit: soft time limit of 0.05s exceeded"


async def test_a_handler_still_sleeping_at_its_hard_limit_is_cancelled_with_a_time_limit() -> None:
    cancelled: list[bool] = []

    async def sleeper(payload: Effect, ctx: HandlerContext, deps: None) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    quick, slow = effect("quick"), effect("slow")
    work = dispatch(
        HandlerRegistry([Handler(EFFECT, sleeper, None)]),
        TimeLimits(overrides={EFFECT.type: TimeLimit(0.02, 0.05)}),
    )
    deliveries = [delivery_of(slow), delivery_of(quick)]
    with pytest.raises(HardTimeLimitExceeded) as raised:
        await work(deliveries, Scope(cast(AsyncSession, None), "probe", "probe:1"))
    assert cancelled == [True]  # the first handler was stopped; the second never started
    assert raised.value.delivery is deliveries[0]  # so that a batch fails that one alone
    assert error_text(raised.value) == "time_limit: hard time limit of 0.05s exceeded"


async def test_a_handlers_own_timeout_is_not_taken_for_a_time_limit() -> None:
    async def own_timeout(payload: Effect, ctx: HandlerContext, deps: None) -> None:
        raise TimeoutError("the SMTP server did not answer")

    with pytest.raises(TimeoutError) as raised:
        await run(own_timeout, TimeLimit(10, 20), effect("own"))
    assert type(raised.value) is TimeoutError


async def test_without_limits_a_handler_has_no_deadline_and_its_soft_scope_does_nothing() -> None:
    async def unlimited(payload: Effect, ctx: HandlerContext, deps: None) -> dict[str, Any]:
        async with ctx.soft_limit():
            await asyncio.sleep(0)
        return {"deadline": ctx.deadline, "reached": ctx.soft_limit_reached()}

    assert await run(unlimited, TimeLimit(0, 0), effect("free")) == [
        {"deadline": None, "reached": False}
    ]


def test_a_types_limit_comes_from_the_setting_then_its_catalog_entry_then_the_default() -> None:
    limits = TimeLimits(TimeLimit(5, 8), {"notification.send": TimeLimit(1, 2)})
    assert limits.for_type("notification.send") == TimeLimit(1, 2)  # PRS_TIME_LIMITS
    assert limits.for_type("file.process") == TimeLimit(120, 180)  # declared in the catalog
    assert limits.for_type("deal.created") == TimeLimit(5, 8)  # the two defaults


def test_settings_read_per_type_limits_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRS_TIME_LIMITS", json.dumps({"file.process": [60, 90]}))
    monkeypatch.setenv("PRS_SOFT_TIME_LIMIT_SECONDS", "0")
    monkeypatch.setenv("PRS_HARD_TIME_LIMIT_SECONDS", "30")
    limits = ServiceSettings().resolved_time_limits()
    assert limits.for_type("file.process") == TimeLimit(60, 90)
    assert limits.for_type("deal.created") == TimeLimit(0, 30)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PRS_TIME_LIMITS": '{"file.proces": [60, 90]}'}, "'file.proces' is not a message type"),
        ({"PRS_TIME_LIMITS": '{"file.process": [90, 60]}'}, "file.process: the soft time limit"),
        ({"PRS_TIME_LIMITS": '{"file.process": 60}'}, "expected [soft seconds, hard seconds]"),
        ({"PRS_TIME_LIMITS": '{"file.process": [-1, 60]}'}, "cannot be negative"),
        (
            {"PRS_SOFT_TIME_LIMIT_SECONDS": "100", "PRS_HARD_TIME_LIMIT_SECONDS": "10"},
            "PRS_SOFT_TIME_LIMIT_SECONDS / PRS_HARD_TIME_LIMIT_SECONDS",
        ),
    ],
    ids=["unknown-type", "soft-after-hard", "not-a-pair", "negative", "defaults-inverted"],
)
def test_bad_time_limit_settings_are_refused_with_the_setting_named(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        ServiceSettings()
    assert message in str(raised.value)
    if "PRS_TIME_LIMITS" in env:
        assert "PRS_TIME_LIMITS" in str(raised.value)


# --- through the real runtime, broker and database ------------------------------------------


def lifecycles(events: list[Envelope], task_id: uuid.UUID | None) -> list[TaskLifecycle]:
    return [
        TaskLifecycle.model_validate(e.payload)
        for e in events
        if e.task_id == task_id and e.type.startswith("task.")
    ]


@pytest.mark.parametrize(
    ("database_url", "batch_size"),
    [("sqlite", 1), ("postgresql", 1), ("postgresql", 16)],
    ids=["sqlite", "postgresql", "postgresql-batch16"],
    indirect=True,
)
async def test_a_sleeping_handler_is_ended_by_its_hard_limit_and_fails_with_reason_time_limit(
    probe_host,
    publisher: Publisher,
    tap,
    broker: BrokerProbe,
    topology: Topology,
    count_effects,
    batch_size: int,
) -> None:
    events = await tap("task.#")
    slow, quick, after = effect("asleep", sleep_ms=600_000), effect("quick"), effect("after")
    async with probe_host(
        max_retries=1,
        retry_base_delay=0.2,
        time_limits={EFFECT.type: [0.2, 0.5]},
        batch_size=batch_size,
        # Long enough for both messages to share the first batch.
        batch_wait=0.5,
    ) as host:
        await publisher.publish(slow)
        await publisher.publish(quick)
        seen = await events.wait_for(
            lambda s: (
                TaskStatus.FAILED in [lc.status for lc in lifecycles(s, slow.task_id)]
                and TaskStatus.SUCCEEDED in [lc.status for lc in lifecycles(s, quick.task_id)]
            )
        )
        # The queue is free: the next message is handled as usual.
        await publisher.publish(after)
        await events.wait_for(
            lambda s: TaskStatus.SUCCEEDED in [lc.status for lc in lifecycles(s, after.task_id)]
        )
        dead = await eventually(
            lambda: broker.get_all(topology.dlq(topology.queue("workflow"))),
            message="the slow message in the DLQ",
        )
        assert host.runtime.in_flight == 0
    failures = [lc for lc in lifecycles(seen, slow.task_id) if lc.status.value != "STARTED"]
    assert [(f.status, f.attempt) for f in failures] == [
        (TaskStatus.RETRYING, 1),
        (TaskStatus.FAILED, 2),
    ]
    assert {f.error for f in failures} == {"time_limit: hard time limit of 0.5s exceeded"}
    [letter] = dead
    assert letter.headers[REASON_HEADER] == "time_limit"
    assert letter.headers[ATTEMPTS_HEADER] == 2
    assert letter.headers[ERROR_HEADER] == "time_limit: hard time limit of 0.5s exceeded"
    assert await count_effects("asleep") == 0
    assert await count_effects("quick") == 1
    assert await count_effects("after") == 1
