"""Composition root of the deal-workflow service: real adapters wired to the handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from deal_workflow.adapters.clock import SystemClock
from deal_workflow.adapters.pdf import FpdfInvoiceRenderer
from deal_workflow.dependencies import Dependencies
from deal_workflow.handlers import processes, replica, reports, workflow
from deal_workflow.settings import DealWorkflowSettings
from prs_shared.diagnostics import base_registry
from prs_shared.messaging import deals, files, prs_events
from prs_shared.messaging.handlers import Handler, HandlerContext, HandlerRegistry, Result
from prs_shared.service import ServiceHost
from prs_shared.storage import LocalFileStore

MIGRATIONS = Path(__file__).parent / "migrations"
COMMAND_QUEUES = ("workflow", "business_processes", "reports")

UseCase = Callable[[Any, HandlerContext, Dependencies], Awaitable[Result]]

HANDLERS: dict[str, UseCase] = {
    # Commands
    deals.PROCESS_DEAL_WORKFLOW.type: workflow.process_deal_workflow,
    deals.RUN_VERIFICATION_REMINDERS.type: processes.run_verification_reminders,
    deals.RUN_COMMISSION_CALCULATION.type: processes.run_commission_calculation,
    deals.DETECT_OVERDUE_DEALS.type: processes.run_overdue_detection,
    deals.GENERATE_AUDIT_REPORT.type: reports.generate_audit_report,
    # Events that feed the replica; registering them binds the service's events queue to them.
    prs_events.ORGANIZATION_CREATED.type: replica.on_organization,
    prs_events.ORGANIZATION_CHANGED.type: replica.on_organization,
    prs_events.USER_CREATED.type: replica.on_user,
    prs_events.USER_CHANGED.type: replica.on_user,
    prs_events.DEAL_CREATED.type: replica.on_deal,
    prs_events.DEAL_CHANGED.type: replica.on_deal,
    prs_events.PAYMENT_RECORDED.type: replica.on_payment,
    files.FILE_PROCESSED.type: replica.on_file_processed,
    files.FILE_REJECTED.type: replica.on_file_rejected,
}


def default_dependencies(settings: DealWorkflowSettings) -> Dependencies:
    return Dependencies(
        clock=SystemClock(),
        files=LocalFileStore(settings.resolved_file_store_dir()),
        invoices=FpdfInvoiceRenderer(),
    )


def bind(handler: UseCase, deps: Dependencies) -> Handler:
    """The registry's ``(payload, ctx)`` handler with this service's dependencies bound."""

    async def bound(payload: Any, ctx: HandlerContext) -> Result:
        return await handler(payload, ctx, deps)

    bound.__name__ = getattr(handler, "__name__", "handler")
    return bound


def handlers(deps: Dependencies) -> HandlerRegistry:
    registry = base_registry()
    for type_, handler in HANDLERS.items():
        registry.register(type_, bind(handler, deps))
    return registry


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
