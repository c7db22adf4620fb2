"""Fixtures of the scheduler's tests: a clock the test drives, scheduler hosts against the real
broker and database, and readers of the run table and of what reached the broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from sqlalchemy import select

from prs_shared.db.engine import SessionFactory, create_engine, session_factory
from prs_shared.db.migrations import upgrade
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.topology import Topology, declare_base, declare_work_queue
from prs_shared.testing.fixtures import BrokerProbe
from scheduler.bootstrap import MIGRATIONS, SchedulerHost, bootstrap
from scheduler.models import Run
from scheduler.settings import SchedulerSettings

SATURDAY_EVENING = datetime(2026, 2, 28, 23, 52, 30, tzinfo=UTC)
"""Seven and a half minutes before a Sunday midnight: every job of the table is near."""


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(SATURDAY_EVENING)


@pytest.fixture
def scheduler_settings(
    amqp_url: str, namespace: str, tmp_path: Path
) -> Callable[..., SchedulerSettings]:
    def make(database_url: str, **overrides: Any) -> SchedulerSettings:
        values: dict[str, Any] = {
            "amqp_url": amqp_url,
            "namespace": namespace,
            "database_url": database_url,
            "data_dir": tmp_path,
            "tick_seconds": 0.02,
            "lease_seconds": 15,
            "heartbeat_interval": 60,
            "shutdown_grace": 2,
            "metrics_port": 0,
            "retry_base_delay": 0.2,
        }
        values.update(overrides)
        return SchedulerSettings(**values)

    return make


SchedulerRunner = Callable[..., AbstractAsyncContextManager[SchedulerHost]]


@pytest.fixture
def run_scheduler(scheduler_settings: Callable[..., SchedulerSettings]) -> SchedulerRunner:
    @asynccontextmanager
    async def run(
        database_url: str, clock: FakeClock, **overrides: Any
    ) -> AsyncIterator[SchedulerHost]:
        host = bootstrap(scheduler_settings(database_url, **overrides), clock=clock)
        await host.start()
        try:
            yield host
        finally:
            await host.stop()

    return run


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    """Sessions on the test's database, migrated to head (no broker involved)."""
    engine = create_engine(database_url)
    await upgrade(engine, MIGRATIONS)
    yield session_factory(engine)
    await engine.dispose()


async def all_runs(sessions: SessionFactory) -> list[Run]:
    async with sessions() as session:
        rows = await session.scalars(select(Run).order_by(Run.scheduled_for, Run.job))
        return list(rows)


class BrokerView:
    """What reached the broker: the command queues nobody consumes in these tests, and a queue
    bound to every ``schedule.*`` event."""

    def __init__(self, broker: BrokerProbe, topology: Topology, events_queue: str) -> None:
        self._broker = broker
        self._topology = topology
        self._events_queue = events_queue
        self.taken: dict[str, list[Envelope]] = {}

    async def take(self, queue: str) -> list[Envelope]:
        """Everything in a command queue (``business_processes``) or ``events``, so far."""
        name = self._events_queue if queue == "events" else self._topology.queue(queue)
        got = [Envelope.model_validate_json(m.body) for m in await self._broker.get_all(name)]
        self.taken.setdefault(queue, []).extend(got)
        return self.taken[queue]

    async def count(self, queue: str) -> int:
        name = self._events_queue if queue == "events" else self._topology.queue(queue)
        return (await self._broker.queue(name)).messages + len(self.taken.get(queue, []))


@pytest.fixture
async def broker_view(
    amqp_url: str, topology: Topology, broker: BrokerProbe
) -> AsyncIterator[BrokerView]:
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await declare_base(channel, topology)
    # A service name the namespace clean-up knows, so the queue goes with the namespace.
    name = topology.events_queue("probe-tap")
    await declare_work_queue(
        channel, topology, name, ["schedule.#"], exchange=topology.events_exchange
    )
    yield BrokerView(broker, topology, name)
    await connection.close()


class Kit:
    """Helpers the test modules share (conftest is not importable under importlib mode)."""

    FakeClock = FakeClock
    SATURDAY_EVENING = SATURDAY_EVENING
    all_runs = staticmethod(all_runs)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
