"""Composition root of the file-processor service: real adapters wired to the handlers.

Tests pass their own scanners or clock to :func:`bootstrap`; everything else is built from
settings here and nowhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from file_processor import owners
from file_processor.cleanup import UploadCleanup
from file_processor.handlers import FileDeps, handle_process_file
from file_processor.processing import Pipeline
from file_processor.rejections import RejectionLog
from file_processor.scanning import BuiltinScanner, ClamdScanner, Scanner
from file_processor.settings import FileProcessorSettings
from prs_shared.db.engine import create_engine, is_sqlite, session_factory
from prs_shared.db.migrations import upgrade
from prs_shared.diagnostics import base_handlers
from prs_shared.messaging import prs_events
from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.files import PROCESS_FILE
from prs_shared.messaging.handlers import Handler, HandlerRegistry
from prs_shared.messaging.outbox import OutboxRelay
from prs_shared.messaging.topology import Topology
from prs_shared.service import ServiceHost
from prs_shared.storage import LocalFileStore

MIGRATIONS = Path(__file__).parent / "migrations"
COMMAND_QUEUES = ("file_processing",)

Clock = Callable[[], datetime]


def build_scanners(settings: FileProcessorSettings) -> list[Scanner]:
    scanners: list[Scanner] = [BuiltinScanner()]
    if settings.clamd_url:
        scanners.append(ClamdScanner(settings.clamd_url, timeout=settings.clamd_timeout))
    return scanners


@dataclass
class Components:
    """The file-processor's adapters, built once per process."""

    settings: FileProcessorSettings
    executor: ThreadPoolExecutor
    pipeline: Pipeline
    rejections_engine: AsyncEngine
    rejections: RejectionLog
    rejections_apart: bool
    """True when rejections live in their own database (SQLite), with their own outbox relay."""
    clock: Clock


def build_components(
    settings: FileProcessorSettings,
    *,
    scanners: Sequence[Scanner] | None = None,
    clock: Clock = utcnow,
) -> Components:
    executor = ThreadPoolExecutor(settings.image_workers, thread_name_prefix="file-processor")
    pipeline = Pipeline(
        upload_dir=settings.resolved_upload_dir(),
        store=LocalFileStore(settings.resolved_file_store_dir()),
        scanners=list(scanners) if scanners is not None else build_scanners(settings),
        executor=executor,
        max_image_pixels=settings.max_image_pixels,
        max_file_bytes=settings.max_file_bytes,
        allow_text=settings.allow_text_attachments,
    )
    url = settings.rejections_database_url()
    engine = create_engine(url, pool_size=2)
    return Components(
        settings=settings,
        executor=executor,
        pipeline=pipeline,
        rejections_engine=engine,
        rejections=RejectionLog(engine, Topology(namespace=settings.namespace)),
        rejections_apart=is_sqlite(url),
        clock=clock,
    )


def upload_cleanup(components: Components) -> UploadCleanup:
    s = components.settings
    return UploadCleanup(
        upload_dir=s.resolved_upload_dir(),
        rejections=components.rejections_engine,
        processed_retention=timedelta(hours=s.retention_uploads_hours),
        quarantine=timedelta(days=s.retention_quarantine_days),
        batch_size=s.cleanup_batch_size,
    )


def handlers(components: Components) -> HandlerRegistry:
    """Every message the service handles, and the function that handles it."""
    deps = FileDeps(components.pipeline, components.rejections, components.clock)
    clock = components.clock
    return HandlerRegistry(
        [
            *base_handlers([upload_cleanup(components)]),
            Handler(PROCESS_FILE, handle_process_file, deps),
            # Whose users and deals are whose: handling the events binds the events queue to them.
            Handler(prs_events.USER_CREATED, owners.on_user, clock),
            Handler(prs_events.USER_CHANGED, owners.on_user, clock),
            Handler(prs_events.DEAL_CREATED, owners.on_deal, clock),
            Handler(prs_events.DEAL_CHANGED, owners.on_deal, clock),
        ]
    )


class FileProcessorHost(ServiceHost):
    """The service host plus the rejections' own database and relay (on SQLite)."""

    def __init__(self, components: Components) -> None:
        super().__init__(
            components.settings,
            handlers=handlers(components),
            command_queues=COMMAND_QUEUES,
            migrations=MIGRATIONS,
        )
        self.components = components
        self._rejections_relay: OutboxRelay | None = None
        self._relay_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        c = self.components
        if c.rejections_apart:
            await upgrade(c.rejections_engine, MIGRATIONS)
        await super().start()
        if c.rejections_apart:
            self._rejections_relay = OutboxRelay(
                session_factory(c.rejections_engine), self.publisher
            )
            c.rejections.on_committed = self._rejections_relay.notify
            self._relay_task = asyncio.ensure_future(self._rejections_relay.run())
        else:
            c.rejections.on_committed = self.relay.notify

    async def stop(self) -> None:
        # Rejections committed during the runtime's grace period are relayed before the broker
        # connection goes.
        await self.runtime.stop()
        if self._rejections_relay is not None and self._relay_task is not None:
            self._rejections_relay.stop()
            _, pending = await asyncio.wait([self._relay_task], timeout=5)
            for task in pending:
                task.cancel()
        await super().stop()
        c = self.components
        c.executor.shutdown(wait=True)
        await c.rejections_engine.dispose()


def bootstrap(
    settings: FileProcessorSettings | None = None,
    *,
    scanners: Sequence[Scanner] | None = None,
    clock: Clock = utcnow,
) -> FileProcessorHost:
    settings = settings or FileProcessorSettings()
    return FileProcessorHost(build_components(settings, scanners=scanners, clock=clock))
