"""Field types shared by the message catalogs.

Every field of every message is bounded, so that a message a consumer could not store is refused
when it is validated (and dead-lettered as a schema mismatch) instead of failing in a handler:
strings have a maximum length, numbers a range (and are finite), lists a maximum number of items,
free-form JSON objects a maximum serialized size, and datetimes carry a time zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import (
    BeforeValidator,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema, to_json

_T = TypeVar("_T")

KIB = 1024
MIB = 1024 * KIB
MAX_INT32 = 2**31 - 1
"""The largest value of a 32-bit integer column (``Integer`` on PostgreSQL)."""
MAX_INT64 = 2**63 - 1
"""The largest value of a 64-bit integer column (``BigInteger``)."""
WEEK_MS = 7 * 24 * 60 * 60 * 1000
"""A week in milliseconds: longer than any task may run."""


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

# --- strings ------------------------------------------------------------------------------------

BoundedStr = Annotated[str, StringConstraints(max_length=200)]
"""A name, label, type or key: at most 200 characters."""

LongStr = Annotated[str, StringConstraints(max_length=4000)]
"""Text for people (an error, a reason): at most 4000 characters."""

FileKey = Annotated[str, StringConstraints(min_length=1, max_length=500)]
"""A key of the file store (the services' columns hold 500 characters)."""

Email = Annotated[EmailStr, Field(max_length=320)]
"""An email address (at most 320 characters, as the services' columns)."""

MailboxStr = Annotated[str, StringConstraints(max_length=320)]
"""An email address as text, as a service used it (not validated again): at most 320 characters."""

# --- numbers --------------------------------------------------------------------------------------

Count = Annotated[int, Field(ge=0, le=MAX_INT32)]
"""A number of things, stored in a 32-bit integer column."""

BigCount = Annotated[int, Field(ge=0, le=MAX_INT64)]
"""A number of things or bytes that may outgrow 32 bits (a 64-bit integer column)."""

Attempt = Annotated[int, Field(ge=1, le=MAX_INT32)]
"""An attempt number: 1 for the first try."""

Version = Annotated[int, Field(ge=1, le=MAX_INT32)]
"""A snapshot version of an entity (the replicas keep it in a 32-bit integer column)."""

DurationMs = Annotated[float, Field(ge=0, le=WEEK_MS, allow_inf_nan=False)]
"""A duration in milliseconds, at most a week."""


@dataclass(frozen=True)
class DecimalText:
    """Bounds the string form of a Decimal field, which pydantic leaves unbounded.

    A longer string is refused before it is parsed, and the JSON schema's string alternative gets
    the same ``maxLength``.
    """

    max_length: int = 40

    def _check(self, value: object) -> object:
        if isinstance(value, str) and len(value) > self.max_length:
            raise ValueError(f"a decimal is at most {self.max_length} characters")
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        for option in json_schema.get("anyOf", ()):
            if option.get("type") == "string":
                option.setdefault("maxLength", self.max_length)
        return json_schema


Money = Annotated[Decimal, Field(max_digits=18, decimal_places=4, ge=0, lt=10**14), DecimalText()]
"""An amount in the currency's major unit, never a float (``NUMERIC(18, 4)``)."""

Rate = Annotated[Decimal, Field(max_digits=11, decimal_places=10, ge=0, le=1), DecimalText()]
"""A fraction between 0 and 1, e.g. 0.05 for 5%; at most ten decimal places."""

# --- free-form JSON -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JsonLimit:
    """Bounds a free-form JSON value: at most ``max_bytes`` serialized, every number finite."""

    max_bytes: int

    def _check(self, value: _T) -> _T:
        raw = to_json(value, inf_nan_mode="constants", serialize_unknown=True)
        if len(raw) > self.max_bytes:
            raise ValueError(f"is {len(raw)} bytes as JSON; at most {self.max_bytes} are allowed")
        # NaN and Infinity only appear in the text when a number (or a string) holds them.
        if (b"NaN" in raw or b"Infinity" in raw) and not _all_finite(value):
            raise ValueError("holds NaN or infinity; numbers must be finite")
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        size = (
            f"{self.max_bytes // MIB} MiB"
            if self.max_bytes % MIB == 0
            else f"{self.max_bytes // KIB} KiB"
            if self.max_bytes % KIB == 0
            else f"{self.max_bytes} bytes"
        )
        json_schema.setdefault("description", f"At most {size} as JSON; numbers finite.")
        return json_schema


def _all_finite(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif isinstance(item, Decimal):
            if not item.is_finite():
                return False
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
    return True


JsonObject = Annotated[dict[str, Any], JsonLimit(64 * KIB)]
"""A free-form JSON object (extra data of a request): at most 64 KiB serialized."""

LargeJsonObject = Annotated[dict[str, Any], JsonLimit(1 * MIB)]
"""A free-form JSON object that may list many things (a task's result): at most 1 MiB."""

MessagePayload = Annotated[dict[str, Any], JsonLimit(4 * MIB)]
"""The payload of an envelope, before its own model validates it: at most 4 MiB."""

FileKeys = Annotated[dict[str, FileKey], JsonLimit(16 * KIB)]
"""Names (a format, a variant) → file store keys: at most 16 KiB serialized."""
