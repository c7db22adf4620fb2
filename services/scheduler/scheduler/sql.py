"""Dialect-aware statements that work the same on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, CursorResult
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


def _insert(session: AsyncSession, model: type[DeclarativeBase]) -> Any:
    table: Any = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


async def insert_if_absent(
    session: AsyncSession, model: type[DeclarativeBase], values: dict[str, Any]
) -> bool:
    """Insert a row unless its key exists; True when this call inserted it.

    On PostgreSQL a concurrent second caller waits for the first to commit and then inserts
    nothing, instead of failing (and aborting its transaction) on the key.
    """
    stmt = _insert(session, model).values(**values).on_conflict_do_nothing()
    return _rowcount(await session.execute(stmt)) == 1


async def upsert_where(
    session: AsyncSession,
    model: type[DeclarativeBase],
    values: dict[str, Any],
    key: list[str],
    where: ColumnElement[bool],
) -> bool:
    """Insert a row, or update the existing one if ``where`` holds for it; True when either."""
    stmt = _insert(session, model).values(**values)
    updates = {name: stmt.excluded[name] for name in values if name not in key}
    stmt = stmt.on_conflict_do_update(index_elements=key, set_=updates, where=where)
    return _rowcount(await session.execute(stmt)) == 1
