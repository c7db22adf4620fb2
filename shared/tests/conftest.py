"""Fixtures for the runtime's integration tests: a probe service against the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from sqlalchemy import func, select

from prs_shared.db.engine import create_engine, session_factory
from prs_shared.service import ServiceHost
from prs_shared.testing.hosts import running_host
from prs_shared.testing.probe import MIGRATIONS, effects, probe_registry
from prs_shared.testing.worker import ProbeSettings


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
