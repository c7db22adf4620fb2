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

import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy import Float, bindparam, case, cast, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.models import RateBucket
from gateway.ratelimit import RateLimiter

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
    """Refill and spend in one statement. ``excluded.updated`` is the insert's
    clock_timestamp(), read once, so the refill and the stored time agree."""
    insert = postgresql.insert(RateBucket).values(
        scope=bindparam("scope"),
        key=bindparam("key"),
        tokens=bindparam("burst", type_=Float) - 1,
        updated=func.clock_timestamp(),
        allowed=True,
    )
    refilled = _refilled(insert.excluded.updated)
    return insert.on_conflict_do_update(
        index_elements=[_BUCKETS.c.scope, _BUCKETS.c.key],
        set_={
            "tokens": refilled - case((refilled >= 1, 1), else_=0),
            "allowed": refilled >= 1,
            "updated": insert.excluded.updated,
        },
    ).returning(_BUCKETS.c.tokens, _BUCKETS.c.allowed)


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

    Each take is one statement in autocommit: one round trip, no BEGIN and COMMIT around it.
    """

    engine: AsyncEngine
    scope: Scope
    per_minute: float
    burst: int
    prune_every: float = 60.0
    """Seconds between this replica's sweeps of full buckets (keys can come from outside)."""
    _pruned: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def take(self, key: str) -> float:
        params = {**self._params(), "key": key}
        async with self.engine.connect() as conn:
            tokens, allowed = (await conn.execute(_TAKE, params)).one()
            if time.monotonic() - self._pruned > self.prune_every:
                self._pruned = time.monotonic()
                await conn.execute(_PRUNE, {"scope": self.scope, "full_after": self._full_after})
        return 0.0 if allowed else self._wait(float(tokens))

    async def wait(self, key: str) -> float:
        async with self.engine.connect() as conn:
            tokens = (await conn.execute(_WAIT, {**self._params(), "key": key})).scalar()
        return 0.0 if tokens is None or tokens >= 1 else self._wait(float(tokens))

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


def make_limiter(
    store: Literal["auto", "process", "database"],
    engine: AsyncEngine,
    scope: Scope,
    per_minute: float,
    burst: int,
) -> Limiter:
    """The limiter ``PRS_LIMITS_STORE`` asks for; ``auto`` shares it exactly when replicas can."""
    if store == "auto":
        store = "process" if engine.dialect.name == "sqlite" else "database"
    if store == "process":
        return InProcessLimiter(RateLimiter(per_minute, burst))
    # GatewaySettings refuses "database" on SQLite: the statements are PostgreSQL's.
    return DatabaseLimiter(engine, scope, per_minute, burst)
