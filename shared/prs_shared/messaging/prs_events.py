"""Events other PRS services publish; the platform keeps replicas of what it needs from them.

Each event carries a full snapshot of the entity (event-carried state transfer), so a consumer
that missed an earlier change is corrected by the next one. ``version`` on the snapshot orders
changes to the same entity: a replica ignores a snapshot older than what it holds.
"""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from prs_shared.messaging import catalog
from prs_shared.messaging.common import CurrencyCode, Email, Identifier, Money, Rate, Version
from prs_shared.messaging.messages import Message


class CommissionTier(Message):
    up_to: Money | None = Field(description="Upper bound of the tier; null for the last tier.")
    rate: Rate = Field(description="Fraction, e.g. 0.05 for 5%.")


class CommissionPolicy(Message):
    kind: Literal["flat", "tiered"]
    rate: Rate | None = Field(default=None, description="For flat: a fraction.")
    tiers: list[CommissionTier] = Field(
        default_factory=list, max_length=100, description="For tiered, ascending."
    )

    @model_validator(mode="after")
    def _consistent(self) -> CommissionPolicy:
        if self.kind == "flat" and self.rate is None:
            raise ValueError("a flat policy needs a rate")
        if self.kind == "tiered":
            if not self.tiers:
                raise ValueError("a tiered policy needs tiers")
            bounds = [t.up_to for t in self.tiers]
            if bounds[-1] is not None or any(b is None for b in bounds[:-1]):
                raise ValueError("only the last tier is open-ended")
            closed = [b for b in bounds if b is not None]
            if closed != sorted(closed) or len(set(closed)) != len(closed):
                raise ValueError("tier bounds must strictly increase")
        return self


class Organization(Message):
    organization_id: Identifier
    name: str = Field(min_length=1, max_length=200)
    currency: CurrencyCode = "USD"
    commission_policy: CommissionPolicy = CommissionPolicy(kind="flat", rate=Decimal("0.05"))
    version: Version = 1


class UserRole(enum.StrEnum):
    ADMIN = "admin"
    VERIFIER = "verifier"
    SALESPERSON = "salesperson"
    FINANCE = "finance"


class User(Message):
    user_id: Identifier
    organization_id: Identifier
    email: Email
    full_name: str = Field(min_length=1, max_length=200)
    roles: list[UserRole] = Field(default_factory=list, max_length=20)
    active: bool = True
    password_expires_at: AwareDatetime | None = None
    version: Version = 1


class Deal(Message):
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


class Payment(Message):
    payment_id: Identifier
    deal_id: Identifier
    organization_id: Identifier
    amount: Money
    currency: CurrencyCode
    received_at: AwareDatetime
    method: str = Field(default="bank_transfer", max_length=50)


ORGANIZATION_CREATED = catalog.event(
    "organization.created", Organization, "An organization joined."
)
ORGANIZATION_CHANGED = catalog.event("organization.changed", Organization, "Organization changed.")
USER_CREATED = catalog.event("user.created", User, "A user was created.")
USER_CHANGED = catalog.event("user.changed", User, "A user changed (roles, email, active).")
DEAL_CREATED = catalog.event("deal.created", Deal, "A deal was created in PRS.")
DEAL_CHANGED = catalog.event("deal.changed", Deal, "A deal's data changed in PRS.")
PAYMENT_RECORDED = catalog.event("payment.recorded", Payment, "A payment on a deal was recorded.")
