"""update_payment_status: the deal's payment status from its recorded payments and the date."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from deal_workflow.domain.money import as_stored, round_money
from deal_workflow.domain.payments import paid_total, payment_status
from deal_workflow.domain.states import DealState, Outcome, ensure_allowed
from deal_workflow.models import Deal
from deal_workflow.service_layer.lifecycle import apply, outcome_fields
from deal_workflow.service_layer.unit import Unit
from prs_shared.messaging.deals import (
    PAYMENT_STATUS_CHANGED,
    PaymentStatus,
    PaymentStatusChanged,
    WorkflowAction,
)

ACTION = WorkflowAction.UPDATE_PAYMENT_STATUS


@dataclass(frozen=True)
class PaymentStatusResult:
    deal_id: str
    previous: PaymentStatus
    current: PaymentStatus
    paid_total: Decimal
    currency: str

    @property
    def changed(self) -> bool:
        return self.previous is not self.current

    def as_dict(self) -> dict[str, Any]:
        return {
            "deal_id": self.deal_id,
            "previous": self.previous.value,
            "current": self.current.value,
            "changed": self.changed,
            "paid_total": f"{round_money(self.paid_total, self.currency):f}",
            "currency": self.currency,
        }


async def sync_payment_status(
    u: Unit,
    deal: Deal,
    *,
    actor: str,
    user_id: str | None,
    why: str,
    record_unchanged: bool,
) -> PaymentStatusResult:
    """Recompute and store the status; announce a change of status.

    A new paid total with the same status (a second partial payment) is a money change: it is
    audited but not announced. Payments in another currency than the deal's are not counted
    (verification reports them).
    """
    ensure_allowed(DealState(deal.state), ACTION)
    payments = [p for p in await u.repo.payments_of(deal.deal_id) if p.currency == deal.currency]
    paid = paid_total(p.amount for p in payments)
    current = payment_status(deal.value, paid, deal.due_date, u.now().date())
    previous = PaymentStatus(deal.payment_status)
    result = PaymentStatusResult(deal.deal_id, previous, current, paid, deal.currency)
    money_changed = paid != deal.paid_total
    if not (result.changed or money_changed or record_unchanged):
        return result
    before = {"payment_status": previous.value, "paid_total": as_stored(deal.paid_total)}
    deal.payment_status = current.value
    deal.paid_total = paid
    last = payments[-1].amount if payments else None
    await apply(
        u,
        deal,
        ACTION,
        Outcome.CHANGED if result.changed else Outcome.UNCHANGED,
        actor=actor,
        reason=f"{why}: {len(payments)} payment(s) totalling {paid:f} of {deal.value:f}",
        before=before,
        after={"payment_status": current.value, "paid_total": as_stored(paid)},
        events={
            PAYMENT_STATUS_CHANGED.type: lambda: PaymentStatusChanged(
                **outcome_fields(deal, user_id),
                previous=previous,
                current=current,
                paid_total=paid,
                last_payment_amount=last,
            )
        },
    )
    return result
