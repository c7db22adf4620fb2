"""A deal's payment status, from the payments recorded against it and the calendar."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from prs_shared.messaging.deals import PaymentStatus


def paid_total(amounts: Iterable[Decimal]) -> Decimal:
    return sum(amounts, Decimal(0))


def outstanding(value: Decimal, paid: Decimal) -> Decimal:
    return max(Decimal(0), value - paid)


def payment_status(
    value: Decimal, paid: Decimal, due_date: date | None, today: date
) -> PaymentStatus:
    """Overpaid and paid win over the calendar; short of the value, a passed due date is overdue.

    Overdue starts the day after the due date. A partly paid deal past its due date is overdue
    (its outstanding amount says how much is missing).
    """
    if paid > value:
        return PaymentStatus.OVERPAID
    if paid == value:
        return PaymentStatus.PAID
    if due_date is not None and today > due_date:
        return PaymentStatus.OVERDUE
    if paid > 0:
        return PaymentStatus.PARTIALLY_PAID
    return PaymentStatus.UNPAID
