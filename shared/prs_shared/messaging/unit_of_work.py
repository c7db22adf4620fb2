"""The unit of work: a batch of deliveries handled in one database transaction.

Inbox check (one SELECT for the batch), the subscription's work, the inbox rows and the staged
outbox rows (one INSERT each), COMMIT. A message already in the inbox, or seen earlier in the same
batch, is a duplicate: it is not handled again and its stored result is reused. Everything commits
together or nothing does; the caller decides what a failure means for each delivery.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from prs_shared.db.engine import SessionFactory
from prs_shared.db.tables import delivery_attempts, inbox
from prs_shared.messaging.delivery import Delivery
from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.outbox import add_to_outbox
from prs_shared.messaging.subscription import Result, Scope, Subscription
from prs_shared.messaging.topology import Topology


@dataclass(frozen=True, slots=True)
class Outcome:
    """A committed delivery: its result, or for a duplicate the result stored the first time."""

    duplicate: bool
    result: dict[str, Any] | None
    duration_ms: float


@dataclass(frozen=True)
class UnitOfWork:
    sessions: SessionFactory
    topology: Topology
    service: str
    worker: str
    on_committed: Callable[[], None] | None = None

    async def commit(
        self, sub: Subscription, batch: Sequence[Delivery], *, forget_crashes: bool = False
    ) -> list[Outcome]:
        """Handle ``batch`` in one transaction; raises (rolled back) if anything fails."""
        t0 = time.perf_counter()
        async with self.sessions() as session, session.begin():
            seen = await self._seen(session, batch) if sub.inbox else {}
            fresh = _first_copies(batch, seen) if sub.inbox else list(batch)
            scope = Scope(session, self.service, self.worker)
            results = await sub.work(fresh, scope) if fresh else []
            if len(results) != len(fresh):
                raise RuntimeError(f"work returned {len(results)} results for {len(fresh)}")
            duration_ms = (time.perf_counter() - t0) * 1000
            if sub.inbox and fresh:
                rows = [inbox_row(d, r, duration_ms) for d, r in zip(fresh, results, strict=True)]
                await session.execute(insert(inbox), rows)
            await add_to_outbox(session, scope.staged, self.topology)
            if forget_crashes:
                keys = [d.key for d in batch]
                await session.execute(
                    delete(delivery_attempts).where(delivery_attempts.c.key.in_(keys))
                )
        if scope.staged and self.on_committed is not None:
            self.on_committed()
        handled = [Outcome(False, result, duration_ms) for result in results]
        if not sub.inbox:
            return handled
        # Every copy after the one handled (or stored before) is a duplicate of it.
        for delivery, outcome in zip(fresh, handled, strict=True):
            seen[delivery.key] = replace(outcome, duplicate=True)
        firsts = {id(d): o for d, o in zip(fresh, handled, strict=True)}
        return [firsts.get(id(d)) or seen[d.key] for d in batch]

    async def _seen(self, session: AsyncSession, batch: Sequence[Delivery]) -> dict[str, Outcome]:
        """The stored outcomes of the batch's messages that were handled before."""
        found = await session.execute(
            select(inbox.c.message_id, inbox.c.result, inbox.c.duration_ms).where(
                inbox.c.message_id.in_([d.key for d in batch])
            )
        )
        return {r.message_id: Outcome(True, r.result, r.duration_ms or 0.0) for r in found}


def _first_copies(batch: Sequence[Delivery], seen: dict[str, Outcome]) -> list[Delivery]:
    """The deliveries to handle: not seen before, and the first copy of each message."""
    keys: set[str] = set()
    fresh: list[Delivery] = []
    for delivery in batch:
        if delivery.key not in seen and delivery.key not in keys:
            keys.add(delivery.key)
            fresh.append(delivery)
    return fresh


def inbox_row(delivery: Delivery, result: Result, duration_ms: float) -> dict[str, Any]:
    envelope = delivery.envelope
    return {
        "message_id": delivery.key,
        "message_type": delivery.type,
        "task_id": str(envelope.task_id) if envelope and envelope.task_id else None,
        "processed_at": utcnow(),
        "result": result,
        "duration_ms": duration_ms,
    }
