"""Composition root of the notifier service: real adapters wired to the handlers."""

from __future__ import annotations

from pathlib import Path

from notifier.settings import NotifierSettings
from prs_shared.diagnostics import base_registry
from prs_shared.messaging.handlers import HandlerRegistry
from prs_shared.service import ServiceHost

MIGRATIONS = Path(__file__).parent / "migrations"
COMMAND_QUEUES = ("auth",)


def handlers() -> HandlerRegistry:
    return base_registry()


def bootstrap(settings: NotifierSettings | None = None) -> ServiceHost:
    settings = settings or NotifierSettings()
    return ServiceHost(
        settings,
        handlers=handlers(),
        command_queues=COMMAND_QUEUES,
        migrations=MIGRATIONS,
    )
