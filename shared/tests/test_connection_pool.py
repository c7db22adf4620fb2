"""A service holds at most PRS_DB_POOL_SIZE + PRS_DB_POOL_OVERFLOW PostgreSQL connections, however
many deliveries it works on at once: replicas times that is what a deployment must fit under the
server's max_connections (docs/deploy.md)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from prs_shared.db.engine import create_engine
from prs_shared.messaging.envelope import Envelope
from prs_shared.testing.fixtures import eventually
from prs_shared.testing.probe import EFFECT, Effect

pytestmark = pytest.mark.asyncio

TASKS = 24


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_busy_service_stays_within_its_pool_and_still_finishes_every_task(
    probe_host: Any, count_effects: Any, database_url: str, pg_admin_url: str
) -> None:
    database = make_url(database_url).database
    admin = create_engine(pg_admin_url, pool_size=1)
    seen: list[int] = []

    async def connections() -> int:
        async with admin.connect() as conn:
            n = await conn.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db"), {"db": database}
            )
            return int(n or 0)

    async def sample(stop: asyncio.Event) -> None:
        while not stop.is_set():
            seen.append(await connections())
            await asyncio.sleep(0.02)

    try:
        # The effect counter's own engine holds one connection of the database as well.
        async with probe_host(prefetch=TASKS, batch_size=1, db_pool_size=2, db_pool_overflow=1) as (
            host
        ):
            baseline = await connections()
            stop = asyncio.Event()
            sampler = asyncio.ensure_future(sample(stop))
            for i in range(TASKS):
                effect = Effect(key=f"pooled-{i}", sleep_ms=150)
                await host.publisher.publish(
                    Envelope(type=EFFECT.type, payload=effect.model_dump(), task_id=uuid.uuid4())
                )

            async def all_done() -> bool:
                counts = [await count_effects(f"pooled-{i}") for i in range(TASKS)]
                return all(n == 1 for n in counts)

            await eventually(all_done, timeout=60)
            stop.set()
            await sampler
    finally:
        await admin.dispose()
    # 24 handlers at once, each holding a transaction for 150 ms, would want 24 connections.
    assert seen, "no sample taken"
    assert baseline <= 3 + 1, baseline
    assert max(seen) <= 3 + 1, seen
