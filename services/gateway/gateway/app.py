"""The gateway's composition root: FastAPI app whose lifespan owns broker and database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from gateway import registry
from gateway.acceptor import TaskAcceptor
from gateway.api import problems
from gateway.api.routes import (
    dead_letters,
    health,
    keys,
    monitoring,
    notifications,
    processes,
    queueing,
    task_admin,
    tasks,
)
from gateway.auth import Role, ensure_key
from gateway.broker_view import REGISTRY_CONSUMER, queue_names
from gateway.dead_letters import DeadLetterArchive
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings
from gateway.state import GatewayState, KeyCache
from prs_shared.diagnostics import base_registry
from prs_shared.messaging.batch import BatchConsumer
from prs_shared.messaging.deals import AUDIT_REPORT_GENERATED
from prs_shared.messaging.messages import HEARTBEAT, LIFECYCLE_STATUS_TYPES
from prs_shared.messaging.notifications import NOTIFICATION_FAILED, NOTIFICATION_SENT
from prs_shared.service import ServiceHost
from prs_shared.storage import LocalFileStore

MIGRATIONS = Path(__file__).parent / "migrations"
COMMAND_QUEUES = ("monitoring", "maintenance")


def build_host(settings: GatewaySettings) -> ServiceHost:
    return ServiceHost(
        settings,
        handlers=base_registry(),
        command_queues=COMMAND_QUEUES,
        migrations=MIGRATIONS,
    )


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        host = build_host(settings)
        await host.start()
        if settings.admin_api_key is not None:
            async with host.sessions() as session, session.begin():
                await ensure_key(
                    session,
                    settings.admin_api_key.get_secret_value(),
                    name="admin (PRS_ADMIN_API_KEY)",
                    role=Role.ADMIN,
                )
        consumer = BatchConsumer(
            name=REGISTRY_CONSUMER,
            connection=host.connection,
            topology=host.topology,
            sessions=host.sessions,
            publisher=host.publisher,
            routing_keys=[
                *LIFECYCLE_STATUS_TYPES.values(),
                HEARTBEAT.type,
                AUDIT_REPORT_GENERATED.type,
                NOTIFICATION_SENT.type,
                NOTIFICATION_FAILED.type,
            ],
            handler=registry.apply_events,
            worker=host.worker,
        )
        await consumer.start()
        archive = DeadLetterArchive(
            host.connection, host.topology, host.sessions, queue_names(host.topology)
        )
        await archive.start()
        acceptor = TaskAcceptor(host.sessions, host.relay.notify)
        acceptor.start()
        app.state.gateway = GatewayState(
            settings,
            host,
            consumer,
            archive,
            KeyCache(host),
            RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
            acceptor,
            LocalFileStore(settings.resolved_file_store_dir()),
        )
        try:
            yield
        finally:
            await acceptor.stop()
            await archive.stop()
            await consumer.stop()
            await host.stop()

    app = FastAPI(
        title="PRS Tasks gateway",
        version="0.1.0",
        description="Queue background tasks of the Payment Receiving System and follow them.",
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(health.router)
    app.include_router(queueing.router)
    app.include_router(monitoring.router)
    app.include_router(task_admin.router)
    app.include_router(tasks.router)
    app.include_router(processes.router)
    app.include_router(dead_letters.router)
    app.include_router(notifications.router)
    app.include_router(keys.router)
    return app
