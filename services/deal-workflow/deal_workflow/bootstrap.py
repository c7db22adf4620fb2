"""Composition root of the deal-workflow service: real adapters wired to the handlers."""

from __future__ import annotations

from pathlib import Path

from deal_workflow.settings import DealWorkflowSettings
from prs_shared.diagnostics import base_registry
from prs_shared.messaging.handlers import HandlerRegistry
from prs_shared.service import ServiceHost

MIGRATIONS = Path(__file__).parent / "migrations"
COMMAND_QUEUES = ("workflow", "business_processes", "reports")


def handlers() -> HandlerRegistry:
    return base_registry()


def bootstrap(settings: DealWorkflowSettings | None = None) -> ServiceHost:
    settings = settings or DealWorkflowSettings()
    return ServiceHost(
        settings,
        handlers=handlers(),
        command_queues=COMMAND_QUEUES,
        migrations=MIGRATIONS,
    )
