"""The invoice PDF: a real document, readable, whatever alphabet the names are written in."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

from pypdf import PdfReader

from deal_workflow.adapters.pdf import FpdfInvoiceRenderer, latin1
from deal_workflow.domain.invoices import InvoiceDocument, InvoiceLine


def test_names_outside_latin_1_are_simplified_not_refused() -> None:
    assert latin1("Zoë Łódź — Čapek") == "Zoë Lódz - Capek"
    assert latin1("李") == "?"


def test_an_invoice_renders_to_a_pdf_that_reads_back() -> None:
    document = InvoiceDocument(
        number="INV-2026-000042",
        issued_on=date(2026, 11, 16),
        due_date=date(2026, 12, 31),
        organization_name="Łódź Trading",
        organization_id="org-1",
        client_name="Zoë & Co 李",
        client_id="c-1",
        deal_id="d-1",
        salesperson_name="Sam",
        currency="JPY",
        lines=(InvoiceLine("Deal d-1", Decimal("1234567")),),
        total=Decimal("1234567"),
        paid=Decimal("1000"),
        balance_due=Decimal("1233567"),
    )
    pdf = FpdfInvoiceRenderer().render(document)
    assert pdf.startswith(b"%PDF-")
    assert FpdfInvoiceRenderer().render(document) == pdf  # same invoice, same bytes
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "INV-2026-000042" in text
    assert "Lódz Trading" in text
    assert "Balance due 1,233,567 JPY" in text
