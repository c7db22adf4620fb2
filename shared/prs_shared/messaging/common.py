"""Field types shared by the message catalogs."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, StringConstraints


def _id_to_str(value: object) -> object:
    # PRS ids arrive as integers from some callers (the seed's examples) and as UUID strings from
    # others; both become strings.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Identifier = Annotated[
    str,
    BeforeValidator(_id_to_str),
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$"),
]
"""An id from another PRS service: letters, digits and ``_ . : -``; integers are accepted."""

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""ISO 4217 code, e.g. ``USD``."""

Money = Annotated[Decimal, Field(max_digits=18, decimal_places=4, ge=0)]
"""An amount in the currency's major unit, never a float."""
