"""The admin key from PRS_ADMIN_API_KEY, ensured by every gateway replica at start-up."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from gateway.app import MIGRATIONS
from gateway.auth import Role, ensure_key, hash_key
from gateway.models import ApiKey
from prs_shared.db.engine import create_engine, session_factory
from prs_shared.db.migrations import upgrade


async def test_replicas_starting_together_ensure_one_admin_key(database_url: str) -> None:
    engine = create_engine(database_url)
    await upgrade(engine, MIGRATIONS)
    sessions = session_factory(engine)

    async def start_replica() -> None:
        async with sessions() as session, session.begin():
            await ensure_key(session, "the-admin-key", name="admin", role=Role.ADMIN)

    try:
        await asyncio.gather(*(start_replica() for _ in range(4)))
        async with sessions() as session:
            keys = await session.scalar(
                select(func.count())
                .select_from(ApiKey)
                .where(ApiKey.key_hash == hash_key("the-admin-key"))
            )
    finally:
        await engine.dispose()

    assert keys == 1


async def test_a_revoked_admin_key_is_restored_at_start_up(database_url: str) -> None:
    engine = create_engine(database_url)
    await upgrade(engine, MIGRATIONS)
    sessions = session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            await ensure_key(session, "the-admin-key", name="admin", role=Role.VIEWER)
            row = await session.scalar(select(ApiKey))
            assert row is not None
            row.revoked_at = row.created_at
        async with sessions() as session, session.begin():
            await ensure_key(session, "the-admin-key", name="admin", role=Role.ADMIN)
        async with sessions() as session:
            restored = await session.scalar(select(ApiKey))
    finally:
        await engine.dispose()

    assert restored is not None
    assert restored.revoked_at is None
    assert restored.role == Role.ADMIN.value
