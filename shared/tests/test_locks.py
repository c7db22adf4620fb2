"""``serialize`` holds a PostgreSQL advisory lock for the rest of the transaction, so that
replicas of one service take turns; on SQLite (one replica) it does nothing."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from prs_shared.db.locks import serialize

KEY = 4242


async def test_the_lock_is_held_until_the_transaction_ends(database_url: str) -> None:
    engine = create_async_engine(database_url)
    sessions = async_sessionmaker(engine)
    try:
        async with sessions() as first, first.begin():
            await serialize(first, KEY)
            if engine.dialect.name != "postgresql":
                # No lock function to call: the transaction goes on as before.
                assert await first.scalar(text("SELECT 1")) == 1
                return
            async with sessions() as second, second.begin():
                taken = await second.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": KEY}
                )
                assert taken is False, "another transaction got the lock while it was held"
        async with sessions() as second, second.begin():
            taken = await second.scalar(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": KEY}
            )
            assert taken is True, "the lock outlived its transaction"
    finally:
        await engine.dispose()
