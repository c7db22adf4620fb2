"""How far a high-priority task overtakes a backlog of low ones at a busy consumer.

A probe service works through a backlog of low-priority ``test.effect`` tasks; once it is busy,
one high-priority task is queued. The broker hands it out next, but the consumer already holds up
to its prefetch of low tasks (unacked, in memory), and those run first: so the high task waits
for at most one prefetch of low ones, however long the backlog. The effect rows' ids give the
order in which tasks finished, which is what is counted — no clock involved.

Shared by the runtime's test (a small backlog, one prefetch) and ``make bench`` (10,000 low
tasks, several prefetches).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import func, select

from prs_shared.messaging.envelope import Envelope, Priority
from prs_shared.messaging.topology import delete_all
from prs_shared.service import ServiceHost, connect
from prs_shared.testing.hosts import running_host
from prs_shared.testing.probe import EFFECT, MIGRATIONS, Effect, effects, probe_registry
from prs_shared.testing.worker import ProbeSettings

T = TypeVar("T")

PUBLISH_WINDOW = 500
"""Low tasks published at once, their confirms awaited together."""


@dataclass(frozen=True)
class Overtaking:
    prefetch: int
    batch_size: int
    queue_type: str
    backlog: int
    """Low tasks still queued (not yet delivered) when the high one was queued."""
    overtaken_by: int
    """Low tasks that finished after the high one was queued and before it finished."""
    wait_s: float
    """From queuing the high task to its effect."""

    @property
    def within_one_prefetch(self) -> bool:
        # The consumer may hold a full prefetch when the high task arrives, and a batch being
        # committed as it is queued finishes in the same moment.
        return self.overtaken_by <= self.prefetch + self.batch_size


def _effect(key: str, priority: Priority, busy_ms: int) -> Envelope:
    return Envelope(
        type=EFFECT.type,
        payload=Effect(key=key, sleep_ms=busy_ms).model_dump(),
        task_id=uuid.uuid4(),
        priority=priority,
    )


async def _finished(host: ServiceHost) -> int:
    async with host.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(effects)) or 0)


async def _row_of(host: ServiceHost, key: str) -> int | None:
    async with host.sessions() as session:
        row: int | None = await session.scalar(select(effects.c.id).where(effects.c.key == key))
        return row


async def _poll(check: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
    """``check``'s first truthy answer. Not ``fixtures.eventually``: that fails through pytest,
    and ``make bench`` reports a failed section and goes on."""
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:g}s")
        await asyncio.sleep(0.01)
    return found


async def measure_overtaking(
    settings: ProbeSettings,
    *,
    lows: int,
    busy_ms: int = 2,
    warm: int = 50,
    timeout: float = 120.0,
) -> Overtaking:
    """Queue ``lows`` low tasks, wait until ``warm`` finished, queue one high task and count the
    low ones that finished before it. ``settings`` chooses prefetch, batch size and queue type;
    the database is the probe's own (fresh for each measurement). The namespace's queues and
    exchanges are deleted afterwards."""
    try:
        return await _measure(settings, lows=lows, busy_ms=busy_ms, warm=warm, timeout=timeout)
    finally:
        connection = await connect(settings, "overtaking-cleanup")
        try:
            # The base topology holds the registry's events queue, which takes the lifecycle.
            channel = await connection.channel()
            await delete_all(channel, settings.topology(), ["probe", "gateway-registry"])
        finally:
            await connection.close()


async def _measure(
    settings: ProbeSettings, *, lows: int, busy_ms: int, warm: int, timeout: float
) -> Overtaking:
    async with running_host(
        settings, handlers=probe_registry(), command_queues=("workflow",), migrations=MIGRATIONS
    ) as host:
        for start in range(0, lows, PUBLISH_WINDOW):
            await asyncio.gather(
                *(
                    host.publisher.publish(_effect(f"low-{i}", Priority.LOW, busy_ms))
                    for i in range(start, min(lows, start + PUBLISH_WINDOW))
                )
            )

        async def warmed() -> bool:
            return await _finished(host) >= warm

        await _poll(warmed, timeout, f"{warm} low tasks finished")
        queue = host.topology.queue("workflow")  # where the probe takes test.effect
        channel = await host.connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
            backlog = declared.declaration_result.message_count or 0
            finished_before = await _finished(host)
            queued_at = time.monotonic()
            await host.publisher.publish(_effect("high", Priority.HIGH, busy_ms))

            high_row = await _poll(lambda: _row_of(host, "high"), timeout, "the high task finished")
            wait_s = time.monotonic() - queued_at
            async with host.sessions() as session:
                overtaken = await session.scalar(
                    select(func.count()).select_from(effects).where(effects.c.id < high_row)
                )
            # The backlog is not worked off: what is left is dropped with the namespace.
            await declared.purge()
        finally:
            await channel.close()
    return Overtaking(
        prefetch=settings.prefetch,
        batch_size=settings.batch_size,
        queue_type=settings.queue_type,
        backlog=backlog,
        overtaken_by=int(overtaken or 0) - finished_before,
        wait_s=wait_s,
    )
