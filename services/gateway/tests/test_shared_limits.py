"""Two gateway replicas on one PostgreSQL database share the queuing allowance of a key and the
failed-auth allowance of an address; SQLite keeps them in the process and refuses to share."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.limits import DatabaseLimiter, InProcessLimiter
from gateway.models import RateBucket
from gateway.settings import GatewaySettings
from prs_shared.testing.fixtures import PgDatabases

from .conftest import Gateway

QUEUE_BURST = 4
AUTH_BURST = 3
QUEUE_URL = "/api/background-tasks/queue-deal-processing/"
LIST_URL = "/api/background-tasks/"
BODY = {"deal_id": "1", "workflow_action": "verify_deal"}


@pytest.fixture
async def replicas(
    amqp_url: str, namespace: str, pg_databases: PgDatabases, tmp_path: Path
) -> AsyncIterator[list[Gateway]]:
    """Two gateways, as two replicas are: one database, one broker namespace, one admin key."""
    database_url = await pg_databases.create()
    key = secrets.token_urlsafe(24)
    gateways = []
    async with AsyncExitStack() as stack:
        for name in ("a", "b"):
            settings = GatewaySettings(
                amqp_url=amqp_url,
                namespace=namespace,
                database_url=database_url,
                admin_api_key=key,
                metrics_port=0,
                data_dir=tmp_path / name,
                # Refills slow enough that none comes back during a test.
                rate_limit_burst=QUEUE_BURST,
                rate_limit_per_minute=0.5,
                auth_failure_burst=AUTH_BURST,
                auth_failure_limit_per_minute=0.5,
            )  # type: ignore[call-arg]
            app = create_app(settings)
            manager = await stack.enter_async_context(
                LifespanManager(app, startup_timeout=60, shutdown_timeout=30)
            )
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway"
                )
            )
            gateways.append(Gateway(client, key, settings, app))
        yield gateways


async def test_a_keys_burst_is_spent_across_both_replicas_not_per_replica(
    replicas: list[Gateway],
) -> None:
    a, b = replicas
    key = await a.make_key("operator", "org-a")
    codes = [
        (await (a if i % 2 else b).client.post(QUEUE_URL, json=BODY, headers=a.auth(key)))
        for i in range(QUEUE_BURST + 2)
    ]
    assert [r.status_code for r in codes] == [202] * QUEUE_BURST + [429, 429]
    assert int(codes[-1].headers["retry-after"]) >= 1
    # Another key has its own bucket, at either replica.
    other = await b.make_key("operator", "org-a")
    assert (await a.client.post(QUEUE_URL, json=BODY, headers=a.auth(other))).status_code == 202


async def test_an_address_locked_out_at_one_replica_is_locked_out_at_the_other(
    replicas: list[Gateway],
) -> None:
    a, b = replicas
    unused = await a.make_key("viewer")  # never presented before the lock-out
    wrong = [
        (await a.client.get(LIST_URL, headers={"Authorization": f"Bearer wrong-{i}"})).status_code
        for i in range(AUTH_BURST)
    ]
    assert wrong == [401] * AUTH_BURST
    at_b = await b.client.get(LIST_URL, headers={"Authorization": "Bearer wrong-b"})
    assert at_b.status_code == 429, at_b.text
    assert at_b.headers["content-type"] == "application/problem+json"
    # Not looked up at b either: a valid key nobody used yet looks like a guess from here.
    assert (await b.client.get(LIST_URL, headers=b.auth(unused))).status_code == 429
    # The console's login counts against the same allowance.
    login = await b.client.post("/console/login", data={"api_key": "wrong"})
    assert login.status_code == 429


async def test_concurrent_takes_at_both_replicas_allow_exactly_the_burst(
    replicas: list[Gateway],
) -> None:
    limiters = [r.app.state.gateway.limiter for r in replicas]
    assert all(isinstance(limiter, DatabaseLimiter) for limiter in limiters)
    waits = await asyncio.gather(*(limiters[i % 2].take("shared-key") for i in range(30)))
    assert sum(1 for w in waits if w == 0) == QUEUE_BURST
    assert all(w > 0 for w in waits if w != 0)


async def bucket_tokens(gateway: Gateway, key: str) -> float:
    async with gateway.app.state.gateway.host.sessions() as session:
        tokens = await session.scalar(select(RateBucket.tokens).where(RateBucket.key == key))
    assert tokens is not None
    return float(tokens)


def large(gateway: Gateway, burst: int) -> DatabaseLimiter:
    """A queuing limiter with a large allowance and no refill to speak of."""
    return DatabaseLimiter(gateway.app.state.gateway.host.engine, "queue", 0.001, burst)


async def test_a_replica_takes_a_chunk_of_a_large_allowance_per_statement_and_spends_it_itself(
    replicas: list[Gateway],
) -> None:
    limiter = large(replicas[0], burst=200)
    assert limiter.chunk == 10
    for _ in range(25):
        assert await limiter.take("large-key") == 0
    # Three chunks left the row; five of the thirty tokens are still held by this replica.
    assert await bucket_tokens(replicas[0], "large-key") == pytest.approx(170, abs=0.01)
    # Concurrent requests wait for the take in progress instead of each taking a chunk.
    waits = await asyncio.gather(*(limiter.take("crowded-key") for _ in range(50)))
    assert waits == [0.0] * 50
    assert await bucket_tokens(replicas[0], "crowded-key") == pytest.approx(150, abs=0.01)


async def test_replicas_taking_chunks_together_never_exceed_the_burst(
    replicas: list[Gateway],
) -> None:
    limiters = [large(r, burst=100) for r in replicas]
    waits = await asyncio.gather(*(limiters[i % 2].take("split-key") for i in range(160)))
    granted = sum(1 for w in waits if w == 0)
    # Every token taken from the row is spent by a request at its replica, but the last chunk
    # of one replica may be left over while the other is refused.
    assert 100 - 2 * limiters[0].chunk <= granted <= 100
    assert await bucket_tokens(replicas[0], "split-key") < 1


async def test_full_buckets_are_forgotten_and_busy_ones_kept(replicas: list[Gateway]) -> None:
    state = replicas[0].app.state.gateway
    limiter = DatabaseLimiter(state.host.engine, "auth", per_minute=6000, burst=1, prune_every=0)
    assert await limiter.take("idle") == 0  # empty now, full again after 10 ms
    await asyncio.sleep(0.1)
    assert await limiter.take("busy") == 0  # this take sweeps
    async with state.host.sessions() as session:
        kept = await session.scalars(select(RateBucket.key).where(RateBucket.scope == "auth"))
        assert set(kept) == {"busy"}
        count = await session.scalar(select(func.count()).select_from(RateBucket))
    assert count == 1
    # A forgotten bucket starts full: forgetting it changed nothing.
    assert await limiter.take("idle") == 0


async def test_sqlite_keeps_the_limits_in_the_process_and_refuses_to_share_them(
    tmp_path: Path,
) -> None:
    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'gateway.sqlite3'}"
    with pytest.raises(ValidationError, match="PRS_LIMITS_STORE=database needs PostgreSQL"):
        GatewaySettings(database_url=sqlite, limits_store="database")  # type: ignore[call-arg]
    assert GatewaySettings(database_url=sqlite).limits_store == "auto"  # type: ignore[call-arg]


async def test_the_gateway_on_sqlite_counts_in_the_process(gateway: Gateway) -> None:
    limiter = gateway.app.state.gateway.limiter
    on_sqlite = gateway.settings.resolved_database_url().startswith("sqlite")
    assert isinstance(limiter, InProcessLimiter if on_sqlite else DatabaseLimiter)
