"""A service's database goes away while its queue holds work: the messages wait the outage out
without spending their retries (the tasks are not at fault) and each runs once when the database
is back; an outage longer than PRS_DATABASE_OUTAGE_SECONDS dead-letters them with that reason.

The database is reached through a TCP proxy the test cuts, so the shared server stays up."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy import func, select

from prs_shared.db.engine import create_engine
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.headers import REASON_HEADER
from prs_shared.messaging.topology import Topology
from prs_shared.testing.fixtures import BrokerProbe, PgDatabases, eventually, proxied
from prs_shared.testing.probe import EFFECT, Effect, effects
from prs_shared.testing.tcp_proxy import TcpProxy

pytestmark = pytest.mark.asyncio

TASKS = 12


@pytest.fixture
async def direct_url(pg_databases: PgDatabases) -> str:
    return await pg_databases.create()


@pytest.fixture
def database_url(direct_url: str, pg_proxy: TcpProxy) -> str:
    """The probe service's database, reached through the proxy."""
    return proxied(direct_url, pg_proxy)


async def effect_counts(direct_url: str, prefix: str) -> dict[str, int]:
    engine = create_engine(direct_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(effects.c.key, func.count())
                .where(effects.c.key.like(f"{prefix}%"))
                .group_by(effects.c.key)
            )
            return {key: int(n) for key, n in rows.all()}
    finally:
        await engine.dispose()


DeadLetters = Callable[[], Awaitable[list[AbstractIncomingMessage]]]


@pytest.fixture
def dead_letters(broker: BrokerProbe, topology: Topology) -> DeadLetters:
    """Takes what the probe's command queue dead-lettered so far."""
    return lambda: broker.get_all(topology.dlq(topology.queue("workflow")))


def effect(key: str) -> Envelope:
    return Envelope(type=EFFECT.type, payload=Effect(key=key).model_dump(), task_id=uuid.uuid4())


async def test_work_queued_during_an_outage_runs_once_when_the_database_is_back(
    probe_host: Any, pg_proxy: TcpProxy, direct_url: str, dead_letters: DeadLetters
) -> None:
    # One retry, 0.2 s apart: spent on the outage, every task would be dead-lettered within a
    # second of it.
    async with probe_host(
        max_retries=1, retry_base_delay=0.2, batch_size=4, database_outage_seconds=120
    ) as host:
        await pg_proxy.cut()
        for i in range(TASKS):
            await host.publisher.publish(effect(f"outage-{i}"))
        await asyncio.sleep(3)
        assert await dead_letters() == []
        await pg_proxy.restore()

        async def all_once() -> bool:
            counts = await effect_counts(direct_url, "outage-")
            return len(counts) == TASKS

        await eventually(all_once, timeout=60)
        counts = await effect_counts(direct_url, "outage-")
        assert set(counts.values()) == {1}, counts
    assert await dead_letters() == []


async def test_an_outage_longer_than_the_limit_dead_letters_with_its_reason(
    probe_host: Any, pg_proxy: TcpProxy, direct_url: str, dead_letters: DeadLetters
) -> None:
    async with probe_host(retry_base_delay=0.2, database_outage_seconds=1) as host:
        await pg_proxy.cut()
        await host.publisher.publish(effect("too-long"))
        dead = await eventually(
            dead_letters,
            timeout=30,
            message="the message dead-lettered",
        )
        await pg_proxy.restore()
    assert [m.headers[REASON_HEADER] for m in dead] == ["database_unavailable"]
    assert await effect_counts(direct_url, "too-long") == {}
