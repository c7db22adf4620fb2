"""A transactional outbox for a SQLAlchemy application (the ``outbox`` extra).

:func:`stage` writes an event into the outbox table in the caller's own transaction, so the
event exists exactly when the change that caused it is committed. An :class:`OutboxRelay`
publishes staged events with publisher confirms and deletes each row only after its confirm.

Delivery is at least once: a relay that dies between the confirm and the delete publishes the
event again, and the platform's consumers drop the duplicate by its id.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)
from sqlalchemy.orm import Session

from prs_client.event_models import Event
from prs_client.events import EventPublisher

metadata = MetaData()
"""Holds the outbox table: ``metadata.create_all(engine)``, or add it to your migrations."""

outbox_table = Table(
    "prs_event_outbox",
    metadata,
    # BigInteger on PostgreSQL, but SQLite only autoincrements an INTEGER primary key.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("staged_at", DateTime(timezone=True), nullable=False),
)


def stage(session: Session | Connection, event: Event) -> None:
    """Add ``event`` to the outbox in the caller's transaction; it is relayed once committed."""
    session.execute(
        insert(outbox_table).values(
            event_id=str(event.id),
            event_type=event.type,
            body=event.model_dump_json(),
            staged_at=datetime.now(UTC),
        )
    )


class OutboxRelay:
    """Publishes committed outbox rows in order, oldest first, deleting each after its confirm."""

    def __init__(self, engine: Engine, publisher: EventPublisher, *, batch_size: int = 100):
        self._engine = engine
        self._publisher = publisher
        self._batch_size = batch_size

    def _pending(self) -> list[tuple[int, Event]]:
        query = select(outbox_table.c.seq, outbox_table.c.body).order_by(outbox_table.c.seq)
        with self._engine.connect() as connection:
            rows = connection.execute(query.limit(self._batch_size)).all()
        return [(row.seq, Event.model_validate_json(row.body)) for row in rows]

    def _delete(self, seqs: list[int]) -> None:
        with self._engine.begin() as connection:
            connection.execute(delete(outbox_table).where(outbox_table.c.seq.in_(seqs)))

    async def relay_once(self) -> int:
        """Publish one batch of staged events; returns how many were published and deleted.

        If a publish fails, nothing of the batch is deleted and the error propagates: the rows
        stay for the next attempt.
        """
        # The database calls are synchronous; a thread keeps them off the event loop.
        pending = await asyncio.to_thread(self._pending)
        if not pending:
            return 0
        await self._publisher.publish_many(e for _, e in pending)
        await asyncio.to_thread(self._delete, [seq for seq, _ in pending])
        return len(pending)

    async def relay_all(self) -> int:
        """Publish until the outbox is empty; returns how many events were published."""
        total = 0
        while published := await self.relay_once():
            total += published
        return total

    async def run(self, stop: asyncio.Event, *, interval: float = 1.0) -> None:
        """Relay until ``stop`` is set, looking for new rows every ``interval`` seconds."""
        while not stop.is_set():
            await self.relay_all()
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                continue
