"""What the gateway process holds while it runs."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.acceptor import TaskAcceptor
from gateway.auth import Principal, hash_key
from gateway.limits import Limiter
from gateway.settings import GatewaySettings
from gateway.task_feed import TaskFeed
from prs_shared.service import ServiceHost
from prs_shared.storage import LocalFileStore

Authenticate = Callable[[AsyncSession, str], Awaitable[Principal | None]]


@dataclass
class KeyCache:
    """Remembers verified keys briefly, so each request does not cost a database round trip.

    Only successes are cached, keyed by the key's hash; a revoked key stops working within
    ``ttl`` seconds.
    """

    host: ServiceHost
    ttl: float = 30.0
    _entries: dict[str, tuple[float, Principal]] = field(default_factory=dict)

    def cached(self, presented: str) -> Principal | None:
        """The key's principal if it was verified within ``ttl``; no database round trip."""
        return self._hit(hash_key(presented))

    def _hit(self, digest: str) -> Principal | None:
        hit = self._entries.get(digest)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    async def lookup(self, presented: str, authenticate: Authenticate) -> Principal | None:
        digest = hash_key(presented)
        if (principal := self._hit(digest)) is not None:
            return principal
        now = time.monotonic()
        async with self.host.sessions() as session:
            principal = await authenticate(session, presented)
        if principal is not None:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest] = (now + self.ttl, principal)
        return principal

    def forget(self) -> None:
        self._entries.clear()


@dataclass
class GatewayState:
    settings: GatewaySettings
    host: ServiceHost
    keys: KeyCache
    limiter: Limiter
    """Queuing requests per API key."""
    acceptor: TaskAcceptor
    files: LocalFileStore
    auth_failures: Limiter
    """Failed authentications per client address."""
    feed: TaskFeed
    """Wakes readers waiting for tasks when the registry commits changes to them."""
