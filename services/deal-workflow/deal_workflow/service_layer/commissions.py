"""Calculating a deal's commission: one row per deal, updated when the calculation changes."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from deal_workflow.domain.errors import DomainError
from deal_workflow.domain.money import (
    CommissionQuote,
    as_stored,
    quote_commission,
    round_money,
)
from deal_workflow.domain.states import DealState, Outcome, ensure_allowed
from deal_workflow.models import Commission, Deal
from deal_workflow.service_layer.lifecycle import apply, outcome_fields
from deal_workflow.service_layer.unit import Unit
from prs_shared.messaging.deals import COMMISSION_CALCULATED, CommissionCalculated, WorkflowAction
from prs_shared.messaging.prs_events import CommissionPolicy

ACTION = WorkflowAction.CALCULATE_COMMISSION


class Change(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class CommissionResult:
    change: Change
    commission: Commission
    previous_amount: Decimal | None

    def as_dict(self) -> dict[str, Any]:
        c = self.commission
        return {
            "deal_id": c.deal_id,
            "commission_id": c.commission_id,
            "amount": f"{round_money(c.amount, c.currency):f}",
            "currency": c.currency,
            "rate_description": c.rate_description,
            "change": self.change.value,
            "previous_amount": (
                None
                if self.previous_amount is None
                else f"{round_money(self.previous_amount, c.currency):f}"
            ),
        }


def _breakdown(quote: CommissionQuote) -> list[dict[str, Any]]:
    return [
        {
            "lower": f"{s.lower:f}",
            "upper": None if s.upper is None else f"{s.upper:f}",
            "rate": f"{s.rate:f}",
            "base": f"{s.base:f}",
            "exact": f"{s.exact:f}",
            "amount": f"{s.amount:f}",
        }
        for s in quote.shares
    ]


async def quote_for(u: Unit, deal: Deal) -> CommissionQuote:
    org = await u.repo.organization(deal.organization_id)
    if org is None:
        raise DomainError(f"organization {deal.organization_id} of deal {deal.deal_id} is unknown")
    if org.currency != deal.currency:
        # Tier bounds are amounts in the organization's currency.
        raise DomainError(
            f"deal {deal.deal_id} is in {deal.currency}, its organization's commission policy "
            f"in {org.currency}"
        )
    policy = CommissionPolicy.model_validate(org.commission_policy)
    return quote_commission(deal.value, deal.currency, policy)


async def calculate_commission(
    u: Unit,
    deal: Deal,
    *,
    actor: str,
    user_id: str | None,
    why: str,
    record_unchanged: bool,
) -> CommissionResult:
    """Create or correct the deal's commission; never a second row for the same deal.

    ``record_unchanged`` writes an audit entry even when nothing changed (an explicit request is
    worth recording; a periodic reconciliation finding nothing is not).
    """
    ensure_allowed(DealState(deal.state), ACTION)
    quote = await quote_for(u, deal)
    now = u.now()
    row = await u.repo.commission_of(deal.deal_id, lock=True)
    previous = None if row is None else row.amount
    if row is None:
        change = Change.CREATED
        row = Commission(
            commission_id=str(uuid.uuid4()),
            deal_id=deal.deal_id,
            organization_id=deal.organization_id,
            calculated_at=now,
        )
        u.repo.add(row)
    elif (
        row.amount != quote.amount
        or row.base_value != deal.value
        or row.rate_description != quote.description
        or row.salesperson_id != deal.salesperson_id
        or row.currency != deal.currency
    ):
        change = Change.UPDATED
    else:
        change = Change.UNCHANGED
    result = CommissionResult(change, row, previous)
    if change is Change.UNCHANGED and not record_unchanged:
        return result
    before = None if change is Change.CREATED else _snapshot(row)
    if change is not Change.UNCHANGED:
        row.salesperson_id = deal.salesperson_id
        row.base_value = deal.value
        row.amount = quote.amount
        row.currency = deal.currency
        row.rate_description = quote.description
        row.breakdown = _breakdown(quote)
        row.updated_at = now
    await u.repo.flush()
    outcome = Outcome.UNCHANGED if change is Change.UNCHANGED else Outcome.CHANGED
    await apply(
        u,
        deal,
        ACTION,
        outcome,
        actor=actor,
        reason=_reason(why, change, previous, quote),
        before={"commission": before},
        after={"commission": _snapshot(row), "change": change.value},
        events={
            COMMISSION_CALCULATED.type: lambda: CommissionCalculated(
                **outcome_fields(deal, user_id),
                commission_id=row.commission_id,
                amount=quote.amount,
                rate_description=quote.description,
            )
        },
    )
    return result


def _snapshot(row: Commission) -> dict[str, Any]:
    return {
        "commission_id": row.commission_id,
        "amount": as_stored(row.amount),
        "base_value": as_stored(row.base_value),
        "currency": row.currency,
        "rate_description": row.rate_description,
    }


def _reason(why: str, change: Change, previous: Decimal | None, quote: CommissionQuote) -> str:
    expected = f"{quote.amount:f} {quote.currency}"
    if change is Change.CREATED:
        return f"{why}: commission {expected} ({quote.description} of {quote.base_value:f})"
    if change is Change.UPDATED:
        assert previous is not None
        return f"{why}: stored {previous:f}, expected {expected} ({quote.description})"
    return f"{why}: commission {expected} already correct"
