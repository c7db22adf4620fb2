"""Amounts survive the database exactly, on SQLite and on PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import StatementError

from deal_workflow.models import OverdueNotice
from deal_workflow.testing import NOW
from prs_shared.db.engine import SessionFactory

AMOUNTS = [
    "0",
    "0.0001",
    "0.1",
    "1.10",
    "123.4567",
    "99999999999999.9999",  # 18 significant digits: more than a float holds
    "12345678901234.5678",
]


async def test_amounts_round_trip_exactly_with_four_places(sessions: SessionFactory) -> None:
    async with sessions() as session, session.begin():
        for i, text in enumerate(AMOUNTS):
            session.add(
                OverdueNotice(
                    deal_id=f"d-{i}", period="2026-11", outstanding=Decimal(text), sent_at=NOW
                )
            )
    async with sessions() as session:
        rows = (
            await session.execute(select(OverdueNotice).order_by(OverdueNotice.deal_id))
        ).scalars()
        stored = [r.outstanding for r in rows]
        total = await session.scalar(select(func.sum(OverdueNotice.outstanding)))
    assert stored == [Decimal(t) for t in AMOUNTS]
    assert all(isinstance(v, Decimal) and v.as_tuple().exponent == -4 for v in stored)
    assert total == sum(Decimal(t) for t in AMOUNTS)


@pytest.mark.parametrize("bad", [Decimal("0.00001"), 0.1])
async def test_amounts_with_more_places_or_floats_are_refused(
    sessions: SessionFactory, bad: object
) -> None:
    with pytest.raises(StatementError):
        async with sessions() as session, session.begin():
            session.add(OverdueNotice(deal_id="d", period="2026-11", outstanding=bad, sent_at=NOW))
