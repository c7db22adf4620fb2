"""Counting how often a redelivered message was started, so one that kills its worker stops.

RabbitMQ redelivers a message whose consumer died (OOM, a segfault in a decoder, ``os._exit``)
and classic queues have no delivery limit, so such a message would take down every replica in
turn, forever. Before a redelivered message runs, its start is counted in a row committed on its
own; past the limit it is dead-lettered (``crash_loop``) instead of run. Fresh deliveries skip this
entirely: only a message that came back unsettled pays the extra write.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from prs_shared.db.engine import SessionFactory
from prs_shared.db.tables import delivery_attempts
from prs_shared.messaging.envelope import utcnow


async def count_start(sessions: SessionFactory, key: str) -> int:
    """Record one more start of a redelivered message; returns how many there have been."""
    now = utcnow()
    async with sessions() as session, session.begin():
        bind = session.get_bind()
        insert = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
        stmt = (
            insert(delivery_attempts)
            .values(key=key, attempts=1, last_at=now)
            .on_conflict_do_update(
                index_elements=[delivery_attempts.c.key],
                set_={"attempts": delivery_attempts.c.attempts + 1, "last_at": now},
            )
            .returning(delivery_attempts.c.attempts)
        )
        return int((await session.execute(stmt)).scalar_one())


async def forget_older_than(sessions: SessionFactory, cutoff: datetime) -> int:
    async with sessions() as session, session.begin():
        result = await session.execute(
            delete(delivery_attempts).where(delivery_attempts.c.last_at < cutoff)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
