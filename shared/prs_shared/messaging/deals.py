"""Commands to the deal-workflow service and the events it publishes."""

from __future__ import annotations

import enum
from datetime import date
from typing import Literal

from pydantic import AwareDatetime, Field

from prs_shared.messaging import catalog
from prs_shared.messaging.common import (
    BoundedStr,
    Count,
    CurrencyCode,
    FileKey,
    FileKeys,
    Identifier,
    LongStr,
    Money,
)
from prs_shared.messaging.messages import Message


class WorkflowAction(enum.StrEnum):
    VERIFY_DEAL = "verify_deal"
    CALCULATE_COMMISSION = "calculate_commission"
    UPDATE_PAYMENT_STATUS = "update_payment_status"
    GENERATE_INVOICE = "generate_invoice"


class ProcessDealWorkflow(Message):
    """Run one workflow action on one deal."""

    deal_id: Identifier
    workflow_action: WorkflowAction
    user_id: Identifier | None = Field(default=None, description="Who asked, for the audit log.")


class RunVerificationReminders(Message):
    organization_id: Identifier | None = Field(default=None, description="All when null.")


class RunCommissionCalculation(Message):
    organization_id: Identifier | None = Field(default=None, description="All when null.")


ReportType = Literal["comprehensive", "deals", "payments", "users", "security"]


class GenerateAuditReport(Message):
    report_type: ReportType = "comprehensive"
    days: int = Field(default=30, ge=1, le=3650)
    organization_id: Identifier | None = Field(default=None, description="All when null.")


class DetectOverdueDeals(Message):
    organization_id: Identifier | None = None


PROCESS_DEAL_WORKFLOW = catalog.command(
    "deal.process_workflow",
    ProcessDealWorkflow,
    "workflow",
    "Run a workflow action on a deal.",
    time_limit=(30, 60),
)
RUN_VERIFICATION_REMINDERS = catalog.command(
    "process.verification_reminders.run",
    RunVerificationReminders,
    "business_processes",
    "Remind admins and verifiers of deals pending verification for more than 24 hours.",
    time_limit=(240, 300),
)
RUN_COMMISSION_CALCULATION = catalog.command(
    "process.commission_calculation.run",
    RunCommissionCalculation,
    "business_processes",
    "Calculate and reconcile commissions of verified deals.",
    time_limit=(240, 300),
)
DETECT_OVERDUE_DEALS = catalog.command(
    "process.overdue_detection.run",
    DetectOverdueDeals,
    "business_processes",
    "Find deals past due and unpaid; announce each once per period.",
    time_limit=(240, 300),
)
GENERATE_AUDIT_REPORT = catalog.command(
    "report.audit.generate",
    GenerateAuditReport,
    "reports",
    "Produce an audit report.",
    time_limit=(300, 360),
)


# --- events ---------------------------------------------------------------------------------


class DealOutcome(Message):
    deal_id: Identifier
    organization_id: Identifier
    client_name: str = Field(max_length=200)
    value: Money
    currency: CurrencyCode
    salesperson_id: Identifier | None = None
    by_user_id: Identifier | None = None


class DealVerified(DealOutcome):
    checks: list[BoundedStr] = Field(max_length=100, description="Names of the checks that passed.")


class DealRejected(DealOutcome):
    reasons: list[LongStr] = Field(
        min_length=1, max_length=1000, description="Why, one line per failed check."
    )
    manual_review: bool = Field(description="True when a person must decide instead.")


class CommissionCalculated(DealOutcome):
    commission_id: BoundedStr
    amount: Money
    rate_description: str = Field(max_length=500)


class PaymentStatus(enum.StrEnum):
    UNPAID = "unpaid"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    OVERPAID = "overpaid"
    OVERDUE = "overdue"


class PaymentStatusChanged(DealOutcome):
    previous: PaymentStatus
    current: PaymentStatus
    paid_total: Money
    last_payment_amount: Money | None = None


class DealOverdue(DealOutcome):
    due_date: date
    outstanding: Money
    period: BoundedStr = Field(description="The period this announcement covers, e.g. 2026-11.")


class InvoiceGenerated(DealOutcome):
    invoice_number: BoundedStr
    file_key: FileKey = Field(description="Key of the PDF in the file store.")
    total: Money


class VerificationReminderDue(Message):
    organization_id: Identifier
    deal_ids: list[Identifier] = Field(min_length=1, max_length=10_000)
    oldest_pending_since: AwareDatetime
    day: date = Field(description="One reminder per organization and day.")


class AuditReportGenerated(Message):
    report_id: str = Field(max_length=64)
    organization_id: Identifier | None
    report_type: ReportType
    days: int = Field(ge=1, le=3650)
    files: FileKeys = Field(description="Format (json, csv, html) → file store key.")
    requested_by: BoundedStr | None = None


class CommissionReconciled(Message):
    organization_id: Identifier | None
    deals_checked: Count
    created: Count
    fixed: Count
    total_commission: Money


DEAL_VERIFIED = catalog.event("deal.verified", DealVerified, "A deal passed verification.")
DEAL_REJECTED = catalog.event("deal.rejected", DealRejected, "A deal failed verification.")
COMMISSION_CALCULATED = catalog.event(
    "deal.commission_calculated", CommissionCalculated, "A deal's commission was (re)calculated."
)
PAYMENT_STATUS_CHANGED = catalog.event(
    "deal.payment_status_changed", PaymentStatusChanged, "A deal's payment status changed."
)
DEAL_OVERDUE = catalog.event("deal.overdue", DealOverdue, "A deal is past due and unpaid.")
INVOICE_GENERATED = catalog.event("deal.invoice_generated", InvoiceGenerated, "Invoice issued.")
VERIFICATION_REMINDER_DUE = catalog.event(
    "deal.verification_reminder_due",
    VerificationReminderDue,
    "Deals of an organization wait for verification for more than 24 hours.",
)
AUDIT_REPORT_GENERATED = catalog.event(
    "report.audit.generated", AuditReportGenerated, "An audit report is ready to download."
)
COMMISSIONS_RECONCILED = catalog.event(
    "process.commission_calculation.completed",
    CommissionReconciled,
    "A commission calculation run finished, with its reconciliation summary.",
)
