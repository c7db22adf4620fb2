"""Running a service host inside a test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from prs_shared.messaging.handlers import HandlerRegistry
from prs_shared.service import ServiceHost
from prs_shared.settings import ServiceSettings


@asynccontextmanager
async def running_host(
    settings: ServiceSettings,
    *,
    handlers: HandlerRegistry,
    command_queues: Sequence[str],
    migrations: Path,
) -> AsyncIterator[ServiceHost]:
    host = ServiceHost(
        settings, handlers=handlers, command_queues=command_queues, migrations=migrations
    )
    await host.start()
    try:
        yield host
    finally:
        await host.stop()
