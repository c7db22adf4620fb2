"""Reading and locking the service's rows inside the message's transaction.

Lock order, to keep concurrent transactions on PostgreSQL from deadlocking: deal rows first (in
deal id order when several), then an invoice counter, then audit chain heads. Every writer here
follows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from deal_workflow.adapters.sql import insert_if_absent
from deal_workflow.models import (
    AttachmentVerdict,
    AuditEntry,
    Base,
    Commission,
    Deal,
    Invoice,
    InvoiceCounter,
    Organization,
    OverdueNotice,
    Payment,
    Report,
    User,
    VerificationReminder,
)

M = TypeVar("M", bound=Base)


class Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Base) -> None:
        self.session.add(row)

    async def flush(self) -> None:
        await self.session.flush()

    async def _one(self, stmt: Select[M], lock: bool) -> M | None:
        if lock:
            stmt = stmt.with_for_update()
        stmt = stmt.execution_options(populate_existing=True)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    # --- replica ------------------------------------------------------------------------------

    async def organization(
        self, organization_id: str, *, lock: bool = False
    ) -> Organization | None:
        stmt = select(Organization).where(Organization.organization_id == organization_id)
        return await self._one(stmt, lock)

    async def user(self, user_id: str, *, lock: bool = False) -> User | None:
        return await self._one(select(User).where(User.user_id == user_id), lock)

    async def users(self, organization_id: str | None) -> Sequence[User]:
        stmt = select(User).order_by(User.organization_id, User.user_id)
        if organization_id is not None:
            stmt = stmt.where(User.organization_id == organization_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def deal(
        self, deal_id: str, *, lock: bool = False, organization_id: str | None = None
    ) -> Deal | None:
        """The deal; with ``organization_id``, only if it belongs to that organization."""
        stmt = select(Deal).where(Deal.deal_id == deal_id)
        if organization_id is not None:
            stmt = stmt.where(Deal.organization_id == organization_id)
        return await self._one(stmt, lock)

    async def deals(
        self,
        *,
        states: Iterable[str] | None = None,
        organization_id: str | None = None,
        due_before: date | None = None,
        created_between: tuple[datetime, datetime] | None = None,
        lock: bool = False,
    ) -> Sequence[Deal]:
        """Deals by state, organization and dates, in (organization, deal id) order."""
        stmt = select(Deal).order_by(Deal.organization_id, Deal.deal_id)
        if states is not None:
            stmt = stmt.where(Deal.state.in_(list(states)))
        if organization_id is not None:
            stmt = stmt.where(Deal.organization_id == organization_id)
        if due_before is not None:
            stmt = stmt.where(Deal.due_date.is_not(None), Deal.due_date < due_before)
        if created_between is not None:
            stmt = stmt.where(Deal.created_at.between(*created_between))
        if lock:
            # One statement locks them all, in the ORDER BY order.
            stmt = stmt.with_for_update()
        stmt = stmt.execution_options(populate_existing=True)
        return (await self.session.execute(stmt)).scalars().all()

    async def duplicate_candidates(self, deal: Deal, excluded_state: str) -> Sequence[Deal]:
        stmt = select(Deal).where(
            Deal.organization_id == deal.organization_id,
            Deal.deal_id != deal.deal_id,
            Deal.currency == deal.currency,
            Deal.value == deal.value,
            Deal.state != excluded_state,
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def payment(self, payment_id: str) -> Payment | None:
        return await self._one(select(Payment).where(Payment.payment_id == payment_id), False)

    async def payments_of(self, deal_id: str) -> Sequence[Payment]:
        stmt = (
            select(Payment)
            .where(Payment.deal_id == deal_id)
            .order_by(Payment.received_at, Payment.payment_id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def payments_received(
        self, start: datetime, end: datetime, organization_id: str | None
    ) -> Sequence[Payment]:
        stmt = (
            select(Payment)
            .where(Payment.received_at.between(start, end))
            .order_by(Payment.received_at, Payment.payment_id)
        )
        if organization_id is not None:
            stmt = stmt.where(Payment.organization_id == organization_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def verdict_for_file(self, file_id: str) -> AttachmentVerdict | None:
        stmt = select(AttachmentVerdict).where(AttachmentVerdict.file_id == file_id)
        return await self._one(stmt, False)

    async def scan_verdicts(self, file_ids: Iterable[str], organization_id: str) -> dict[str, str]:
        """Verdicts on the files, from uploads of the organization (or of unscoped keys)."""
        ids = list(file_ids)
        if not ids:
            return {}
        stmt = select(AttachmentVerdict).where(
            AttachmentVerdict.file_id.in_(ids), _uploaded_for(organization_id)
        )
        rows = (await self.session.execute(stmt)).scalars().all()
        return {row.file_id: row.verdict for row in rows if row.file_id is not None}

    async def rejected_files(self, deal: Deal) -> Sequence[AttachmentVerdict]:
        """Rejected uploads for the deal by its own organization (or by unscoped keys)."""
        stmt = (
            select(AttachmentVerdict)
            .where(
                AttachmentVerdict.deal_id == deal.deal_id,
                AttachmentVerdict.file_id.is_(None),
                _uploaded_for(deal.organization_id),
            )
            .order_by(AttachmentVerdict.id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    # --- owned --------------------------------------------------------------------------------

    async def commission_of(self, deal_id: str, *, lock: bool = False) -> Commission | None:
        return await self._one(select(Commission).where(Commission.deal_id == deal_id), lock)

    async def invoice_of(self, deal_id: str) -> Invoice | None:
        return await self._one(select(Invoice).where(Invoice.deal_id == deal_id), False)

    async def next_invoice_sequence(self, organization_id: str, year: int) -> int:
        """Take the next number of the (organization, year) counter, holding its row lock.

        The lock lasts until the transaction ends, and the invoice row is written in the same
        transaction: a rolled-back invoice gives its number back, so numbers have no gaps.
        """
        await insert_if_absent(
            self.session,
            InvoiceCounter,
            {"organization_id": organization_id, "year": year, "last_number": 0},
        )
        counter = await self._one(
            select(InvoiceCounter).where(
                InvoiceCounter.organization_id == organization_id, InvoiceCounter.year == year
            ),
            True,
        )
        assert counter is not None
        counter.last_number += 1
        await self.session.flush()
        return counter.last_number

    async def claim_reminder(
        self, organization_id: str, day: date, deal_ids: list[str], now: datetime
    ) -> bool:
        values = {"organization_id": organization_id, "day": day, "deal_ids": deal_ids}
        return await insert_if_absent(
            self.session, VerificationReminder, {**values, "sent_at": now}
        )

    async def claim_overdue_notice(
        self, deal_id: str, period: str, outstanding: Decimal, now: datetime
    ) -> bool:
        values = {"deal_id": deal_id, "period": period, "outstanding": outstanding}
        return await insert_if_absent(self.session, OverdueNotice, {**values, "sent_at": now})

    async def report(self, report_id: str) -> Report | None:
        return await self._one(select(Report).where(Report.report_id == report_id), False)

    async def update_report(self, report_id: str, **values: object) -> None:
        await self.session.execute(
            update(Report).where(Report.report_id == report_id).values(**values)
        )

    async def audit_entries_between(
        self, start: datetime, end: datetime, organization_id: str | None
    ) -> Sequence[AuditEntry]:
        stmt = (
            select(AuditEntry)
            .where(AuditEntry.occurred_at.between(start, end))
            .order_by(AuditEntry.occurred_at, AuditEntry.id)
        )
        if organization_id is not None:
            stmt = stmt.where(AuditEntry.organization_id == organization_id)
        return (await self.session.execute(stmt)).scalars().all()


def _uploaded_for(organization_id: str) -> ColumnElement[bool]:
    # Another organization's upload naming this deal must not count for it (DESIGN.md §3
    # rule 8); an upload by a key without organization (an admin) counts for any.
    return or_(
        AttachmentVerdict.organization_id.is_(None),
        AttachmentVerdict.organization_id == organization_id,
    )
