"""Composition root of the scheduler service: real adapters wired to the handlers."""

from __future__ import annotations

from pathlib import Path

from prs_shared.diagnostics import base_registry
from prs_shared.messaging.handlers import HandlerRegistry
from prs_shared.service import ServiceHost
from scheduler.settings import SchedulerSettings

MIGRATIONS = Path(__file__).parent / "migrations"
COMMAND_QUEUES = ("system",)


def handlers() -> HandlerRegistry:
    return base_registry()


def bootstrap(settings: SchedulerSettings | None = None) -> ServiceHost:
    settings = settings or SchedulerSettings()
    return ServiceHost(
        settings,
        handlers=handlers(),
        command_queues=COMMAND_QUEUES,
        migrations=MIGRATIONS,
    )
