"""Composition root of the deal-workflow service: real adapters wired to the handlers."""

from __future__ import annotations

from pathlib import Path

from deal_workflow.adapters.clock import SystemClock
from deal_workflow.adapters.pdf import FpdfInvoiceRenderer
from deal_workflow.dependencies import Dependencies
from deal_workflow.handlers import processes, replica, reports, workflow
from deal_workflow.settings import DealWorkflowSettings
from prs_shared.diagnostics import base_handlers
from prs_shared.messaging import deals, files, prs_events
from prs_shared.messaging.handlers import Handler, HandlerRegistry
from prs_shared.service import ServiceHost
from prs_shared.storage import LocalFileStore

MIGRATIONS = Path(__file__).parent / "migrations"
COMMAND_QUEUES = ("workflow", "business_processes", "reports")


def default_dependencies(settings: DealWorkflowSettings) -> Dependencies:
    return Dependencies(
        clock=SystemClock(),
        files=LocalFileStore(settings.resolved_file_store_dir()),
        invoices=FpdfInvoiceRenderer(),
    )


def handlers(deps: Dependencies) -> HandlerRegistry:
    """Every message the service handles, and the function that handles it."""
    return HandlerRegistry(
        [
            *base_handlers(),
            # Commands
            Handler(deals.PROCESS_DEAL_WORKFLOW, workflow.process_deal_workflow, deps),
            Handler(deals.RUN_VERIFICATION_REMINDERS, processes.run_verification_reminders, deps),
            Handler(deals.RUN_COMMISSION_CALCULATION, processes.run_commission_calculation, deps),
            Handler(deals.DETECT_OVERDUE_DEALS, processes.run_overdue_detection, deps),
            Handler(deals.GENERATE_AUDIT_REPORT, reports.generate_audit_report, deps),
            # Events that feed the replica; handling them binds the service's events queue to them.
            Handler(prs_events.ORGANIZATION_CREATED, replica.on_organization, deps),
            Handler(prs_events.ORGANIZATION_CHANGED, replica.on_organization, deps),
            Handler(prs_events.USER_CREATED, replica.on_user, deps),
            Handler(prs_events.USER_CHANGED, replica.on_user, deps),
            Handler(prs_events.DEAL_CREATED, replica.on_deal, deps),
            Handler(prs_events.DEAL_CHANGED, replica.on_deal, deps),
            Handler(prs_events.PAYMENT_RECORDED, replica.on_payment, deps),
            Handler(files.FILE_PROCESSED, replica.on_file_processed, deps),
            Handler(files.FILE_REJECTED, replica.on_file_rejected, deps),
        ]
    )


def bootstrap(
    settings: DealWorkflowSettings | None = None, deps: Dependencies | None = None
) -> ServiceHost:
    settings = settings or DealWorkflowSettings()
    return ServiceHost(
        settings,
        handlers=handlers(deps or default_dependencies(settings)),
        command_queues=COMMAND_QUEUES,
        migrations=MIGRATIONS,
    )
