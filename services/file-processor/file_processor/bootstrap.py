"""Composition root of the file-processor service: real adapters wired to the handlers."""

from __future__ import annotations

from pathlib import Path

from file_processor.settings import FileProcessorSettings
from prs_shared.diagnostics import base_registry
from prs_shared.messaging.handlers import HandlerRegistry
from prs_shared.service import ServiceHost

MIGRATIONS = Path(__file__).parent / "migrations"
COMMAND_QUEUES = ("file_processing",)


def handlers() -> HandlerRegistry:
    return base_registry()


def bootstrap(settings: FileProcessorSettings | None = None) -> ServiceHost:
    settings = settings or FileProcessorSettings()
    return ServiceHost(
        settings,
        handlers=handlers(),
        command_queues=COMMAND_QUEUES,
        migrations=MIGRATIONS,
    )
