"""What the handlers need besides their message and its transaction."""

from __future__ import annotations

from dataclasses import dataclass

from deal_workflow.adapters.clock import Clock
from deal_workflow.adapters.pdf import InvoiceRenderer
from prs_shared.storage import FileStore


@dataclass(frozen=True)
class Dependencies:
    clock: Clock
    files: FileStore
    invoices: InvoiceRenderer
