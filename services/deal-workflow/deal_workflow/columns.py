"""Column types of the service's own tables."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from deal_workflow.domain.money import STORAGE_PLACES

_QUANTUM = Decimal(1).scaleb(-STORAGE_PLACES)


class MoneyAmount(TypeDecorator[Decimal]):
    """A Decimal amount with four places, exact on both databases.

    PostgreSQL stores ``NUMERIC(18, 4)``. SQLite has no decimal type: its NUMERIC goes through
    binary floating point, which cannot hold 18 significant digits, so there the amount is stored
    as an integer count of ten-thousandths — exact, and still summable and comparable in SQL.
    """

    impl = Numeric(18, STORAGE_PLACES)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, STORAGE_PLACES, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money must be Decimal, never float")
        amount = Decimal(value)
        stored = amount.quantize(_QUANTUM)
        if stored != amount:
            raise ValueError(f"{amount} has more than {STORAGE_PLACES} decimal places")
        if dialect.name == "sqlite":
            return int(stored.scaleb(STORAGE_PLACES))
        return stored

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-STORAGE_PLACES)
        return Decimal(value).quantize(_QUANTUM)
