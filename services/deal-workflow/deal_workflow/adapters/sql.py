"""Small dialect-aware statements (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CursorResult
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


async def insert_if_absent(
    session: AsyncSession, model: type[DeclarativeBase], values: dict[str, Any]
) -> bool:
    """Insert a row unless its key exists; True when this call inserted it.

    ``ON CONFLICT DO NOTHING`` makes two concurrent callers safe: on PostgreSQL the second waits
    for the first to commit and then inserts nothing, instead of failing on the unique key.
    """
    dialect = session.get_bind().dialect.name
    table: Any = model.__table__
    stmt = (
        postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    ).on_conflict_do_nothing()
    result = await session.execute(stmt.values(**values))
    assert isinstance(result, CursorResult)
    return bool(result.rowcount == 1)
