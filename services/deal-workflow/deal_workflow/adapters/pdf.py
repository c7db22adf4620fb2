"""Rendering invoices as PDF (fpdf2)."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Protocol

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from deal_workflow.domain.invoices import InvoiceDocument
from deal_workflow.domain.money import round_money


class InvoiceRenderer(Protocol):
    def render(self, document: InvoiceDocument) -> bytes: ...


# Letters and signs that Unicode does not decompose into a Latin-1 base.
_PLAIN = {
    "Ł": "L",
    "ł": "l",
    "Đ": "D",
    "đ": "d",
    "Ħ": "H",
    "ħ": "h",
    "\u0131": "i",  # dotless i
    "Œ": "OE",
    "œ": "oe",
    "\u2013": "-",  # en dash
    "—": "-",
    "\u2018": "'",
    "\u2019": "'",
    "“": '"',
    "”": '"',
    "€": "EUR",
}


def latin1(text: str) -> str:
    """Text the PDF core fonts can draw: accents kept where Latin-1 has them, else stripped.

    The core fonts need no font file on the machine; they cover Latin-1 only, so other letters
    lose their accents (``Ł`` → ``L``, ``Č`` → ``C``) and what remains unknown becomes ``?``.
    """
    out: list[str] = []
    for char in text:
        if ord(char) < 256:
            out.append(char)
            continue
        if char in _PLAIN:
            out.append(_PLAIN[char])
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        out.append(base if base and all(ord(c) < 256 for c in base) else "?")
    return "".join(out)


def _amount(value: Decimal, currency: str) -> str:
    return f"{round_money(value, currency):,f} {currency}"


class FpdfInvoiceRenderer:
    """A one-page A4 invoice: issuer, client, deal, lines, totals and balance due."""

    def render(self, document: InvoiceDocument) -> bytes:
        d = document
        pdf = FPDF(format="A4")
        pdf.set_title(latin1(f"Invoice {d.number}"))
        pdf.set_author(latin1(d.organization_name))
        pdf.set_subject(latin1(f"Deal {d.deal_id}"))
        # A fixed creation date makes the same invoice render to the same bytes.
        pdf.set_creation_date(datetime.combine(d.issued_on, time(0, 0), tzinfo=UTC))
        pdf.set_auto_page_break(auto=True, margin=20)
        pdf.add_page()

        def line(text: str, *, size: int = 10, style: str = "", height: float = 6) -> None:
            pdf.set_font("Helvetica", style, size)
            pdf.cell(0, height, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

        line(d.organization_name, size=16, style="B", height=9)
        line(f"Organization {d.organization_id}", size=9)
        pdf.ln(4)
        line("INVOICE", size=20, style="B", height=11)
        line(f"Invoice number: {d.number}", style="B")
        line(f"Issue date: {d.issued_on.isoformat()}")
        line(f"Due date: {d.due_date.isoformat() if d.due_date else 'on receipt'}")
        pdf.ln(4)
        line("Bill to", style="B")
        line(d.client_name)
        if d.client_id:
            line(f"Client {d.client_id}", size=9)
        pdf.ln(2)
        line(f"Deal {d.deal_id}", size=9)
        if d.salesperson_name:
            line(f"Salesperson: {d.salesperson_name}", size=9)
        pdf.ln(6)

        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(130, 8, "Description", border="B")
        pdf.cell(0, 8, "Amount", border="B", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("Helvetica", "", 10)
        for item in d.lines:
            pdf.cell(130, 7, latin1(item.description))
            pdf.cell(
                0,
                7,
                _amount(item.amount, d.currency),
                align="R",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
        pdf.ln(3)
        for label, value, style in (
            ("Total", d.total, "B"),
            ("Paid", d.paid, ""),
            ("Balance due", d.balance_due, "B"),
        ):
            pdf.set_font("Helvetica", style, 10)
            pdf.cell(130, 7, label, align="R")
            pdf.cell(
                0, 7, _amount(value, d.currency), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
        return bytes(pdf.output())
