"""How many bytes rows store, as SQL, for the cleanup's reports and plans."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import LargeBinary, Text, cast, func
from sqlalchemy.ext.asyncio import AsyncSession


def stored_bytes(columns: Sequence[Any], session: AsyncSession) -> Any:
    """A SQL expression: the bytes the columns hold in one row, binary as is, the rest as text."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    total: Any = 0
    for column in columns:
        if isinstance(column.type, LargeBinary):
            size = func.length(column)
        elif dialect == "postgresql":
            size = func.octet_length(cast(column, Text))
        else:
            # SQLite's length() counts characters of text; of a blob, bytes.
            size = func.length(cast(cast(column, Text), LargeBinary))
        total = total + func.coalesce(size, 0)
    return total
