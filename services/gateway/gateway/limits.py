"""The gateway's two allowances — queuing per API key, failed authentications per client
address — kept where every replica sees them.

On PostgreSQL the buckets are rows of ``rate_buckets``, each take one ``INSERT ... ON CONFLICT
DO UPDATE`` that refills and spends in the database's clock: concurrent takes on one key
serialize on its row, so N replicas together allow exactly the burst and the rate, not N times
them, and a client locked out by failing against one replica is locked out at all of them. On
SQLite (one replica by construction) the buckets stay in the process, as they cost nothing
there. ``PRS_LIMITS_STORE`` chooses otherwise.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy import Float, Integer, bindparam, case, cast, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.models import RateBucket
from gateway.ratelimit import RateLimiter
from prs_shared.db.engine import create_engine

Scope = Literal["queue", "auth"]


class Limiter(Protocol):
    async def take(self, key: str) -> float:
        """Spend one token; 0 when allowed, else the seconds until one is available."""
        ...

    async def wait(self, key: str) -> float:
        """Seconds until ``key`` has a token (0 when it has one now), spending nothing."""
        ...


@dataclass
class InProcessLimiter:
    """Buckets in this process: each replica its own."""

    buckets: RateLimiter

    async def take(self, key: str) -> float:
        return self.buckets.take(key)

    async def wait(self, key: str) -> float:
        return self.buckets.wait(key)


_BUCKETS = RateBucket.__table__


def _refilled(now: Any) -> Any:
    """The bucket's tokens at ``now``: what it held plus the refill since, capped at the burst."""
    elapsed = cast(func.extract("epoch", now - _BUCKETS.c.updated), Float)
    return func.least(
        bindparam("burst", type_=Float),
        _BUCKETS.c.tokens + bindparam("rate", type_=Float) * func.greatest(0, elapsed),
    )


def _take_statement() -> Any:
    """Refill and take up to ``chunk`` tokens (as many whole ones as there are) in one
    statement. ``excluded.updated`` is the insert's clock_timestamp(), read once, so the refill
    and the stored time agree."""
    chunk = bindparam("chunk", type_=Float)
    burst = bindparam("burst", type_=Float)
    insert = postgresql.insert(RateBucket).values(
        scope=bindparam("scope"),
        key=bindparam("key"),
        tokens=burst - func.least(chunk, func.floor(burst)),
        updated=func.clock_timestamp(),
        allowed=True,
        granted=cast(func.least(chunk, func.floor(burst)), Integer),
    )
    refilled = _refilled(insert.excluded.updated)
    granted = case((refilled >= 1, func.least(chunk, func.floor(refilled))), else_=0)
    return insert.on_conflict_do_update(
        index_elements=[_BUCKETS.c.scope, _BUCKETS.c.key],
        set_={
            "tokens": refilled - granted,
            "allowed": refilled >= 1,
            "granted": cast(granted, Integer),
            "updated": insert.excluded.updated,
        },
    ).returning(_BUCKETS.c.tokens, _BUCKETS.c.granted)


_TAKE = _take_statement()

_WAIT = select(_refilled(func.clock_timestamp())).where(
    _BUCKETS.c.scope == bindparam("scope"), _BUCKETS.c.key == bindparam("key")
)

# A bucket untouched for burst/rate seconds is full again: forgetting it changes nothing.
_PRUNE = text(
    """
    DELETE FROM rate_buckets
    WHERE scope = :scope
      AND updated < clock_timestamp() - make_interval(secs => CAST(:full_after AS float8))
    """
)


@dataclass
class DatabaseLimiter:
    """Buckets in the gateway's PostgreSQL database, shared by its replicas.

    A take is one statement in autocommit: one round trip, no BEGIN and COMMIT around it. With a
    large allowance a statement per request would cost more than the limit is worth, so a replica
    takes up to ``chunk`` tokens at once (a twentieth of the burst, at most 32; 1 for bursts
    under 40) and spends them itself for up to ``hold_for`` seconds. The replicas together still
    never get more than the burst and the rate: tokens only move from the row to a replica. A
    client may be refused at one replica while another holds a few of its tokens; those lapse
    within ``hold_for``.
    """

    engine: AsyncEngine
    scope: Scope
    per_minute: float
    burst: int
    prune_every: float = 60.0
    """Seconds between this replica's sweeps of full buckets (keys can come from outside)."""
    hold_for: float = 1.0
    _pruned: float = field(default_factory=time.monotonic)
    # Key → (tokens taken from the row and not yet spent, until when they may be spent).
    _held: dict[str, tuple[int, float]] = field(default_factory=dict)
    # Key → the take from the row in progress: concurrent requests wait for it, not add theirs.
    _taking: dict[str, asyncio.Future[None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def chunk(self) -> int:
        return max(1, min(self.burst // 20, 32))

    async def take(self, key: str) -> float:
        while not self._spend_held(key):
            taking = self._taking.get(key)
            if taking is None:
                return await self._take_from_row(key)
            await asyncio.shield(taking)
        return 0.0

    async def wait(self, key: str) -> float:
        if self._holds(key):
            return 0.0
        async with self.engine.connect() as conn:
            tokens = (await conn.execute(_WAIT, {**self._params(), "key": key})).scalar()
        return 0.0 if tokens is None or tokens >= 1 else self._wait(float(tokens))

    async def _take_from_row(self, key: str) -> float:
        done = asyncio.get_running_loop().create_future()
        self._taking[key] = done
        try:
            params = {**self._params(), "key": key, "chunk": float(self.chunk)}
            async with self.engine.connect() as conn:
                tokens, granted = (await conn.execute(_TAKE, params)).one()
                if time.monotonic() - self._pruned > self.prune_every:
                    self._pruned = time.monotonic()
                    await conn.execute(
                        _PRUNE, {"scope": self.scope, "full_after": self._full_after}
                    )
        finally:
            del self._taking[key]
            done.set_result(None)
        if not granted:
            return self._wait(float(tokens))
        if granted > 1:
            self._held[key] = (granted - 1, time.monotonic() + self.hold_for)
        return 0.0

    def _holds(self, key: str) -> bool:
        held = self._held.get(key)
        if held is None:
            return False
        if held[1] <= time.monotonic():
            del self._held[key]
            return False
        return True

    def _spend_held(self, key: str) -> bool:
        if not self._holds(key):
            return False
        left, until = self._held[key]
        if left > 1:
            self._held[key] = (left - 1, until)
        else:
            del self._held[key]
        return True

    def _params(self) -> dict[str, object]:
        return {"scope": self.scope, "burst": float(self.burst), "rate": self._rate}

    def _wait(self, tokens: float) -> float:
        return (1 - tokens) / self._rate

    @property
    def _rate(self) -> float:
        return self.per_minute / 60

    @property
    def _full_after(self) -> float:
        return self.burst / self._rate


Store = Literal["auto", "process", "database"]

BUCKET_CONNECTIONS = 4
"""The buckets' own pool: enough for one-statement takes in turn at thousands per second."""


def resolved_store(store: Store, engine: AsyncEngine) -> Literal["process", "database"]:
    """Where ``PRS_LIMITS_STORE`` puts the buckets; ``auto`` shares them exactly when replicas
    can (PostgreSQL)."""
    if store == "auto":
        return "process" if engine.dialect.name == "sqlite" else "database"
    return store


def bucket_engine(engine: AsyncEngine) -> AsyncEngine:
    """A small fixed pool of the buckets' own, on the gateway's database.

    Every queuing request takes a token. On the service's pool (10 connections, 10 more on
    overflow) 32 concurrent requests kept it overflowing, and each overflow connection was opened
    for one statement and closed again: about one new PostgreSQL connection per request, which
    held the queuing endpoint to a third of its rate with the buckets in the process.
    """
    return create_engine(engine.url, pool_size=BUCKET_CONNECTIONS, max_overflow=0)


def make_limiter(
    store: Store,
    engine: AsyncEngine,
    scope: Scope,
    per_minute: float,
    burst: int,
) -> Limiter:
    """The limiter ``PRS_LIMITS_STORE`` asks for, its buckets (if shared) on ``engine``."""
    if resolved_store(store, engine) == "process":
        return InProcessLimiter(RateLimiter(per_minute, burst))
    # GatewaySettings refuses "database" on SQLite: the statements are PostgreSQL's.
    return DatabaseLimiter(engine, scope, per_minute, burst)
