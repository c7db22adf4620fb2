"""Transaction-scoped locks that keep replicas of one service from doing one thing twice."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def serialize(session: AsyncSession, key: int) -> None:
    """Wait for, then hold until the transaction ends, the lock ``key`` (PostgreSQL).

    On SQLite a database has one writer, and one replica (``single_writer``): nothing to do.
    """
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
