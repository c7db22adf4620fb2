"""Fixtures for the runtime's integration tests: a probe service against the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar

import aio_pika
import pytest
from sqlalchemy import func, select

from prs_shared.db.engine import create_engine, session_factory
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.topology import Topology, declare_base, declare_work_queue
from prs_shared.service import ServiceHost
from prs_shared.settings import ServiceSettings
from prs_shared.testing.hosts import running_host
from prs_shared.testing.probe import MIGRATIONS, effects, probe_registry


class ProbeSettings(ServiceSettings):
    service_name: ClassVar[str] = "probe"


@pytest.fixture
def probe_settings(
    amqp_url: str, namespace: str, database_url: str
) -> Callable[..., ProbeSettings]:
    def make(**overrides: Any) -> ProbeSettings:
        values: dict[str, Any] = {
            "amqp_url": amqp_url,
            "namespace": namespace,
            "database_url": database_url,
            "retry_base_delay": 0.2,
            "heartbeat_interval": 60,
            "shutdown_grace": 5,
        }
        values.update(overrides)
        return ProbeSettings(**values)

    return make


ProbeHost = Callable[..., AbstractAsyncContextManager[ServiceHost]]

# A batch larger than any test sends at once, so that a test's messages can share one batch.
BATCH = 16


@pytest.fixture(params=[1, BATCH], ids=["one-by-one", f"batch{BATCH}"])
def batch_size(request: pytest.FixtureRequest) -> int:
    """The runtime's batch size: a test asking for it runs per message and in batches."""
    value: int = request.param
    return value


@pytest.fixture
def probe_host(probe_settings: Callable[..., ProbeSettings]) -> ProbeHost:
    def start(**overrides: Any) -> AbstractAsyncContextManager[ServiceHost]:
        return running_host(
            probe_settings(**overrides),
            handlers=probe_registry(),
            command_queues=("workflow",),
            migrations=MIGRATIONS,
        )

    return start


@pytest.fixture
async def publisher(amqp_url: str, topology: Topology) -> AsyncIterator[Publisher]:
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    await declare_base(channel, topology)
    await channel.close()
    pub = await Publisher.open(connection, topology)
    yield pub
    await connection.close()


class EventTap:
    """A queue bound to events of given types, read by the test (what the registry would see)."""

    def __init__(self, queue: aio_pika.abc.AbstractQueue) -> None:
        self._queue = queue
        self.seen: list[Envelope] = []

    async def drain(self) -> list[Envelope]:
        while True:
            message = await self._queue.get(fail=False, no_ack=True)
            if message is None:
                return self.seen
            self.seen.append(Envelope.model_validate_json(message.body))

    async def wait_for(
        self, predicate: Callable[[list[Envelope]], bool], timeout: float = 20
    ) -> list[Envelope]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            await self.drain()
            if predicate(self.seen):
                return self.seen
            await asyncio.sleep(0.05)
        raise AssertionError(f"events never matched; saw {[e.type for e in self.seen]}")


@pytest.fixture
async def tap(
    amqp_url: str, topology: Topology
) -> AsyncIterator[Callable[..., Awaitable[EventTap]]]:
    connection = await aio_pika.connect(amqp_url)

    async def make(*keys: str) -> EventTap:
        channel = await connection.channel()
        await declare_base(channel, topology)
        queue = await declare_work_queue(
            channel,
            topology,
            topology.events_queue("probe-tap"),
            keys,
            exchange=topology.events_exchange,
        )
        return EventTap(queue)

    yield make
    channel = await connection.channel()
    await channel.queue_delete(topology.events_queue("probe-tap"))
    await channel.queue_delete(topology.dlq(topology.events_queue("probe-tap")))
    await connection.close()


EffectCounter = Callable[[str], Awaitable[int]]


@pytest.fixture
async def count_effects(database_url: str) -> AsyncIterator[EffectCounter]:
    engine = create_engine(database_url)
    sessions = session_factory(engine)

    async def count(key: str) -> int:
        async with sessions() as session:
            n = await session.scalar(
                select(func.count()).select_from(effects).where(effects.c.key == key)
            )
            return int(n or 0)

    yield count
    await engine.dispose()
