"""Payment status from recorded payments and the calendar."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from deal_workflow.domain.deadlines import pending_too_long, period_of
from deal_workflow.domain.payments import outstanding, payment_status
from deal_workflow.testing import NOW
from prs_shared.messaging.deals import PaymentStatus as P

DUE = date(2026, 11, 30)


@pytest.mark.parametrize(
    ("paid", "today", "expected"),
    [
        ("0", date(2026, 11, 1), P.UNPAID),
        ("400", date(2026, 11, 1), P.PARTIALLY_PAID),
        ("1000", date(2026, 11, 1), P.PAID),
        ("1000.01", date(2026, 11, 1), P.OVERPAID),
        ("0", DUE, P.UNPAID),  # the due date itself is not late
        ("0", date(2026, 12, 1), P.OVERDUE),
        ("400", date(2026, 12, 1), P.OVERDUE),
        ("1000", date(2026, 12, 1), P.PAID),
        ("1200", date(2026, 12, 1), P.OVERPAID),
    ],
)
def test_status_follows_the_paid_total_and_the_due_date(
    paid: str, today: date, expected: P
) -> None:
    assert payment_status(Decimal(1000), Decimal(paid), DUE, today) is expected


def test_a_deal_without_due_date_is_never_overdue() -> None:
    assert payment_status(Decimal(10), Decimal(0), None, date(2099, 1, 1)) is P.UNPAID


def test_outstanding_is_never_negative() -> None:
    assert outstanding(Decimal(100), Decimal(30)) == Decimal(70)
    assert outstanding(Decimal(100), Decimal(130)) == Decimal(0)


def test_the_reminder_threshold_is_strictly_more_than_a_day() -> None:
    assert not pending_too_long(NOW - timedelta(hours=24), NOW)
    assert pending_too_long(NOW - timedelta(hours=24, seconds=1), NOW)


def test_overdue_periods_are_months() -> None:
    assert period_of(date(2026, 1, 31)) == "2026-01"
    assert period_of(date(2026, 12, 1)) == "2026-12"
