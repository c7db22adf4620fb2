"""generate_invoice: a gap-free number, a PDF in the file store, the deal invoiced."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from deal_workflow.domain.errors import DomainError
from deal_workflow.domain.invoices import (
    InvoiceDocument,
    InvoiceLine,
    invoice_file_key,
    invoice_number,
)
from deal_workflow.domain.money import round_money
from deal_workflow.domain.payments import outstanding, paid_total
from deal_workflow.domain.states import DealState, Outcome, ensure_allowed
from deal_workflow.models import Deal, Invoice
from deal_workflow.service_layer.lifecycle import apply, outcome_fields
from deal_workflow.service_layer.unit import Unit
from prs_shared.messaging.deals import INVOICE_GENERATED, InvoiceGenerated, WorkflowAction
from prs_shared.storage import InvalidKey

ACTION = WorkflowAction.GENERATE_INVOICE


async def generate_invoice(
    u: Unit, deal: Deal, *, actor: str, user_id: str | None
) -> dict[str, Any]:
    """Issue the deal's invoice.

    The number comes from a counter row locked until commit; the PDF is written under a key made
    from that number before the commit. Should the transaction roll back after the write, the
    number is reused by the next invoice and its PDF overwrites the orphan: no gap, no stale file
    under a live number.
    """
    ensure_allowed(DealState(deal.state), ACTION)
    org = await u.repo.organization(deal.organization_id)
    if org is None:
        raise DomainError(f"organization {deal.organization_id} of deal {deal.deal_id} is unknown")
    now = u.now()
    year = now.year
    sequence = await u.repo.next_invoice_sequence(deal.organization_id, year)
    number = invoice_number(year, sequence)
    key = invoice_file_key(deal.organization_id, year, number)
    payments = [p for p in await u.repo.payments_of(deal.deal_id) if p.currency == deal.currency]
    paid = paid_total(p.amount for p in payments)
    salesperson = await u.repo.user(deal.salesperson_id) if deal.salesperson_id else None
    total = round_money(deal.value, deal.currency)
    document = InvoiceDocument(
        number=number,
        issued_on=now.date(),
        due_date=deal.due_date,
        organization_name=org.name,
        organization_id=org.organization_id,
        client_name=deal.client_name,
        client_id=deal.client_id,
        deal_id=deal.deal_id,
        salesperson_name=salesperson.full_name if salesperson else None,
        currency=deal.currency,
        lines=(InvoiceLine(f"Deal {deal.deal_id}: {deal.client_name}", total),),
        total=total,
        paid=round_money(paid, deal.currency),
        balance_due=round_money(outstanding(total, paid), deal.currency),
    )
    pdf = await asyncio.to_thread(u.deps.invoices.render, document)
    try:
        await asyncio.to_thread(u.deps.files.put, key, pdf)
    except InvalidKey as exc:
        raise DomainError(f"cannot store invoice {number}: {exc}") from exc
    u.repo.add(
        Invoice(
            invoice_id=str(uuid.uuid4()),
            organization_id=deal.organization_id,
            year=year,
            sequence=sequence,
            number=number,
            deal_id=deal.deal_id,
            file_key=key,
            total=total,
            currency=deal.currency,
            issued_at=now,
        )
    )
    await u.repo.flush()
    await apply(
        u,
        deal,
        ACTION,
        Outcome.ISSUED,
        actor=actor,
        reason=f"invoice {number} issued for {total:f} {deal.currency}",
        before={"invoice": None},
        after={"invoice_number": number, "file_key": key, "total": total},
        events={
            INVOICE_GENERATED.type: lambda: InvoiceGenerated(
                **outcome_fields(deal, user_id), invoice_number=number, file_key=key, total=total
            )
        },
    )
    return {
        "deal_id": deal.deal_id,
        "action": ACTION.value,
        "invoice_number": number,
        "file_key": key,
        "total": f"{total:f}",
        "currency": deal.currency,
        "state": deal.state,
    }
