"""Transactional outbox: messages are rows written in the same transaction as the change that
caused them, and a relay publishes them (with confirms) after the commit.

A row is deleted only after its publish is confirmed. If the relay dies between the two, the row
is published again on the next pass: consumers absorb the duplicate through their inbox (the
message id is the envelope's, so both copies carry the same id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import aio_pika
from aio_pika.abc import DeliveryMode
from sqlalchemy import Delete, delete, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from prs_shared.db.engine import SessionFactory
from prs_shared.db.outage import database_unavailable
from prs_shared.db.tables import outbox
from prs_shared.messaging.envelope import Envelope, utcnow
from prs_shared.messaging.publisher import Publisher, PublishError, amqp_priority, route_for
from prs_shared.messaging.topology import Topology
from prs_shared.metrics import OUTBOX_PUBLISHED, OUTBOX_RELAY_ERRORS

log = logging.getLogger(__name__)


def outbox_rows(
    envelopes: Sequence[Envelope | tuple[Envelope, str | None]], topology: Topology
) -> list[dict[str, Any]]:
    """Rows for envelopes; a tuple names the queue a command should go to instead of its own."""
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for item in envelopes:
        envelope, queue = item if isinstance(item, tuple) else (item, None)
        route = route_for(envelope, topology, queue)
        rows.append(
            {
                "message_id": str(envelope.id),
                "exchange": route.exchange,
                "routing_key": route.routing_key,
                "body": envelope.model_dump_json().encode(),
                "headers": {},
                "priority": amqp_priority(envelope),
                "created_at": now,
            }
        )
    return rows


async def add_to_outbox(
    session: AsyncSession,
    envelopes: Sequence[Envelope | tuple[Envelope, str | None]],
    topology: Topology,
) -> None:
    """Stage messages in the caller's transaction; they leave only if it commits."""
    rows = outbox_rows(envelopes, topology)
    if rows:
        await session.execute(insert(outbox), rows)


async def add_raw_to_outbox(
    session: AsyncSession,
    *,
    message_id: str,
    exchange: str,
    routing_key: str,
    body: bytes,
    headers: dict[str, Any],
    priority: int,
) -> None:
    """Stage a message that is not a catalog envelope (a dead letter's body, as it was)."""
    await session.execute(
        insert(outbox).values(
            message_id=message_id,
            exchange=exchange,
            routing_key=routing_key,
            body=body,
            headers=headers,
            priority=priority,
            created_at=utcnow(),
        )
    )


def _delete_rows(rows: Sequence[Any], ids: list[int]) -> Delete:
    """Delete the published rows by id *and* message id.

    SQLite reuses the rowid of deleted rows. With two relays on one file (two instances of a
    service), one relay may delete a batch and a new row take one of its ids before the other relay
    deletes the same ids: by id alone, that would delete a row nobody published.
    """
    published = set(ids)
    pairs = [(row["id"], row["message_id"]) for row in rows if row["id"] in published]
    return delete(outbox).where(tuple_(outbox.c.id, outbox.c.message_id).in_(pairs))


class OutboxRelay:
    """Publishes committed outbox rows in id order, in batches, concurrently within a batch."""

    def __init__(
        self,
        sessions: SessionFactory,
        publisher: Publisher,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        lock_rows: bool = False,
        after_publish: Callable[[list[int]], Any] | None = None,
    ) -> None:
        self._sessions = sessions
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        # PostgreSQL: several relays may run; SKIP LOCKED gives each its own rows.
        self._lock_rows = lock_rows
        self._wake = asyncio.Event()
        self._stopping = False
        self._after_publish = after_publish

    def notify(self) -> None:
        """Tell the relay that a transaction with outbox rows has just committed."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                sent = await self.relay_once()
            except Exception as exc:
                OUTBOX_RELAY_ERRORS.inc()
                if database_unavailable(exc):
                    # Expected while it lasts: one line a pass, not a traceback each.
                    log.warning(
                        "outbox relay waits for the database: %s: %s", type(exc).__name__, exc
                    )
                else:
                    log.exception("outbox relay pass failed; retrying")
                sent = 0
                await asyncio.sleep(self._poll_interval)
            if sent >= self._batch_size:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows left the outbox."""
        if self._lock_rows:
            # Row locks must be held while publishing, or another relay would take the same rows.
            async with self._sessions() as session, session.begin():
                rows = await self._select(session)
                done = await self._publish_all(rows)
                if done:
                    await session.execute(_delete_rows(rows, done))
        else:
            # SQLite: one relay per database; short transactions keep the single write lock free
            # for handlers while the broker confirms.
            async with self._sessions() as session:
                rows = await self._select(session)
                await session.rollback()
            done = await self._publish_all(rows)
            if done:
                async with self._sessions() as session, session.begin():
                    await session.execute(_delete_rows(rows, done))
        OUTBOX_PUBLISHED.inc(len(done))
        if len(done) < len(rows):
            raise PublishError(f"{len(rows) - len(done)} outbox messages not published")
        return len(done)

    async def _select(self, session: AsyncSession) -> Sequence[Any]:
        stmt = select(outbox).order_by(outbox.c.id).limit(self._batch_size)
        if self._lock_rows:
            stmt = stmt.with_for_update(skip_locked=True)
        return (await session.execute(stmt)).mappings().all()

    async def _publish_all(self, rows: Sequence[Any]) -> list[int]:
        if not rows:
            return []
        results = await asyncio.gather(
            *(self._publish(row) for row in rows), return_exceptions=True
        )
        done: list[int] = []
        for row, res in zip(rows, results, strict=True):
            if isinstance(res, BaseException):
                log.warning("outbox message %s not published: %s", row["message_id"], res)
            else:
                done.append(row["id"])
        if self._after_publish is not None:
            self._after_publish(done)
        return done

    async def _publish(self, row: Any) -> None:
        message = aio_pika.Message(
            body=row["body"],
            content_type="application/json",
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=row["message_id"],
            priority=row["priority"],
            headers=dict(row["headers"] or {}),
        )
        await self._publisher.publish_raw(row["exchange"], row["routing_key"], message)
