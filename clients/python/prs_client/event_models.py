"""The PRS domain events the platform consumes, and the envelope they travel in.

Each event carries a full snapshot of the entity; ``version`` orders the snapshots of one entity
(a consumer ignores one older than what it holds). They mirror the platform's AsyncAPI document;
a test compares them with it so they cannot drift.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from prs_client.models import Priority, UserRole

Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Money = Annotated[Decimal, Field(max_digits=18, decimal_places=4, ge=0, lt=10**14)]
Rate = Annotated[Decimal, Field(max_digits=11, decimal_places=10, ge=0, le=1)]
Version = Annotated[int, Field(ge=1, le=2**31 - 1)]


class _Snapshot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class CommissionTier(_Snapshot):
    up_to: Money | None = Field(description="Upper bound of the tier; null for the last tier.")
    rate: Rate = Field(description="Fraction, e.g. 0.05 for 5%.")


class CommissionPolicy(_Snapshot):
    kind: Literal["flat", "tiered"]
    rate: Rate | None = None
    tiers: list[CommissionTier] = Field(default_factory=list, max_length=100)


class Organization(_Snapshot):
    organization_id: Identifier
    name: str = Field(min_length=1, max_length=200)
    currency: CurrencyCode = "USD"
    commission_policy: CommissionPolicy = CommissionPolicy(kind="flat", rate=Decimal("0.05"))
    version: Version = 1


class User(_Snapshot):
    user_id: Identifier
    organization_id: Identifier
    email: Annotated[EmailStr, Field(max_length=320)]
    full_name: str = Field(min_length=1, max_length=200)
    roles: list[UserRole] = Field(default_factory=list, max_length=20)
    active: bool = True
    password_expires_at: AwareDatetime | None = None
    version: Version = 1


class Deal(_Snapshot):
    deal_id: Identifier
    organization_id: Identifier
    client_id: Identifier | None = None
    client_name: str = Field(min_length=1, max_length=200)
    value: Money
    currency: CurrencyCode
    salesperson_id: Identifier | None = None
    due_date: date | None = None
    attachment_ids: list[Identifier] = Field(default_factory=list, max_length=1000)
    created_at: AwareDatetime
    version: Version = 1


class Payment(_Snapshot):
    payment_id: Identifier
    deal_id: Identifier
    organization_id: Identifier
    amount: Money
    currency: CurrencyCode
    received_at: AwareDatetime
    method: str = Field(default="bank_transfer", max_length=50)


Snapshot = Organization | User | Deal | Payment

EVENT_TYPES: dict[str, type[_Snapshot]] = {
    "organization.created": Organization,
    "organization.changed": Organization,
    "user.created": User,
    "user.changed": User,
    "deal.created": Deal,
    "deal.changed": Deal,
    "payment.recorded": Payment,
}
"""Every PRS domain event the platform consumes, by type, with the snapshot it carries."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """The platform's message envelope around one PRS domain event.

    Build it with :func:`event`; ``id`` is unique per message (consumers use it to drop
    duplicates), ``correlation_id`` ties the messages of one journey together.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID = Field(default_factory=uuid4)
    type: str = Field(min_length=1, max_length=200)
    version: int = Field(default=1, ge=1, le=1000)
    occurred_at: AwareDatetime = Field(default_factory=_utcnow)
    correlation_id: UUID = Field(default_factory=uuid4)
    causation_id: UUID | None = None
    organization_id: str | None = Field(default=None, max_length=200)
    task_id: UUID | None = None
    priority: Priority = Priority.MEDIUM
    payload: dict[str, object] = Field(default_factory=dict)


def event(
    type_: str,
    snapshot: Snapshot,
    *,
    correlation_id: UUID | None = None,
    causation_id: UUID | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """The envelope of a PRS domain event; refuses a type the platform does not consume, or a
    snapshot of the wrong kind for it."""
    expected = EVENT_TYPES.get(type_)
    if expected is None:
        raise ValueError(f"{type_!r} is not a PRS domain event; known: {', '.join(EVENT_TYPES)}")
    if not isinstance(snapshot, expected):
        raise TypeError(f"{type_} carries a {expected.__name__}, not {type(snapshot).__name__}")
    return Event(
        type=type_,
        payload=snapshot.model_dump(mode="json"),
        organization_id=snapshot.organization_id,
        correlation_id=correlation_id or uuid4(),
        causation_id=causation_id,
        occurred_at=occurred_at or _utcnow(),
    )
