"""Invoice numbers, file keys and the content of an invoice document."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


def invoice_number(year: int, sequence: int) -> str:
    """``INV-2026-000042``: sequential and gap-free per organization and year."""
    return f"INV-{year:04d}-{sequence:06d}"


def invoice_file_key(organization_id: str, year: int, number: str) -> str:
    return f"invoices/{organization_id}/{year:04d}/{number}.pdf"


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    amount: Decimal


@dataclass(frozen=True)
class InvoiceDocument:
    """Everything printed on an invoice, already decided (amounts rounded, names resolved)."""

    number: str
    issued_on: date
    due_date: date | None
    organization_name: str
    organization_id: str
    client_name: str
    client_id: str | None
    deal_id: str
    salesperson_name: str | None
    currency: str
    lines: tuple[InvoiceLine, ...]
    total: Decimal
    paid: Decimal
    balance_due: Decimal
