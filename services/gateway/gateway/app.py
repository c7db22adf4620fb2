"""The gateway's composition root: FastAPI app whose lifespan owns broker and database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from gateway import console
from gateway.acceptor import TaskAcceptor
from gateway.api import docs, openapi, problems
from gateway.api.body_limit import BodyLimitMiddleware
from gateway.api.http_metrics import HttpMetricsMiddleware
from gateway.api.routes import (
    dead_letters,
    health,
    housekeeping,
    keys,
    monitoring,
    notifications,
    process_status,
    processes,
    queueing,
    schedules,
    system_health,
    task_admin,
    tasks,
    webhooks,
)
from gateway.auth import Role, ensure_key
from gateway.broker_view import REGISTRY_CONSUMER, queue_names
from gateway.cleanup import Housekeeping, handle_failed_task_cleanup
from gateway.dead_letters import archive_subscriptions
from gateway.health_monitor import HealthMonitor, handle_system_health_check
from gateway.limits import bucket_engine, make_limiter, resolved_store
from gateway.process_runs import recorded
from gateway.registry import registry_subscription
from gateway.settings import GatewaySettings
from gateway.state import GatewayState, KeyCache
from gateway.stuck_tasks import BrokerConsumers, TaskMonitor, handle_task_monitoring
from gateway.task_feed import TaskFeed
from prs_shared.dev_key import write_dev_key
from prs_shared.diagnostics import base_handlers, handle_session_cleanup
from prs_shared.messaging.handlers import Handler, HandlerRegistry
from prs_shared.messaging.schedule import (
    FAILED_TASK_CLEANUP,
    SESSION_CLEANUP,
    SYSTEM_HEALTH_CHECK,
    TASK_MONITORING,
)
from prs_shared.messaging.subscription import Subscription
from prs_shared.service import ServiceHost
from prs_shared.storage import LocalFileStore

MIGRATIONS = Path(__file__).parent / "migrations"
COMMAND_QUEUES = ("monitoring", "maintenance")


def gateway_subscriptions(host: ServiceHost, feed: TaskFeed) -> list[Subscription]:
    """Besides its command queues: the registry's events and every dead-letter queue."""
    t = host.topology
    return [
        registry_subscription(t, t.events_queue(REGISTRY_CONSUMER), feed),
        *archive_subscriptions(t, queue_names(t)),
    ]


def build_host(settings: GatewaySettings, feed: TaskFeed) -> ServiceHost:
    housekeeping = Housekeeping.from_settings(
        settings, LocalFileStore(settings.resolved_file_store_dir())
    )
    consumers = BrokerConsumers()
    monitor = TaskMonitor.from_settings(settings, consumers)
    health = HealthMonitor(settings)
    handlers = HandlerRegistry(
        [
            # The gateway's hourly cleanup is recorded as a run, like its other housekeeping.
            *(h for h in base_handlers([housekeeping]) if h.message != SESSION_CLEANUP),
            Handler(
                SESSION_CLEANUP, recorded(handle_session_cleanup, "maintenance"), (housekeeping,)
            ),
            Handler(
                FAILED_TASK_CLEANUP,
                recorded(handle_failed_task_cleanup, "maintenance"),
                housekeeping,
            ),
            Handler(TASK_MONITORING, recorded(handle_task_monitoring, "monitoring"), monitor),
            Handler(
                SYSTEM_HEALTH_CHECK, recorded(handle_system_health_check, "monitoring"), health
            ),
        ]
    )
    host = ServiceHost(
        settings,
        handlers=handlers,
        command_queues=COMMAND_QUEUES,
        migrations=MIGRATIONS,
        subscriptions=partial(gateway_subscriptions, feed=feed),
    )
    consumers.attach(host)
    health.attach(host)
    return host


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    feed = TaskFeed()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        host = build_host(settings, feed)
        await host.start()
        if settings.admin_api_key is not None:
            async with host.sessions() as session, session.begin():
                await ensure_key(
                    session,
                    settings.admin_api_key.get_secret_value(),
                    name="admin (PRS_ADMIN_API_KEY)",
                    role=Role.ADMIN,
                )
            if settings.environment == "development":
                # So that `prs` finds the key by itself in a shell next to `make run`.
                write_dev_key(settings.data_dir, settings.admin_api_key.get_secret_value())
        acceptor = TaskAcceptor(host.sessions, host.relay.notify)
        acceptor.start()
        store = resolved_store(settings.limits_store, host.engine)
        buckets = bucket_engine(host.engine) if store == "database" else host.engine
        limiter = partial(make_limiter, store, buckets)
        app.state.gateway = GatewayState(
            settings,
            host,
            KeyCache(host),
            limiter("queue", settings.rate_limit_per_minute, settings.rate_limit_burst),
            acceptor,
            LocalFileStore(settings.resolved_file_store_dir()),
            limiter("auth", settings.auth_failure_limit_per_minute, settings.auth_failure_burst),
            feed,
        )
        try:
            yield
        finally:
            await acceptor.stop()
            if buckets is not host.engine:
                await buckets.dispose()
            await host.stop()

    app = FastAPI(
        title="PRS Tasks gateway",
        version="0.1.0",
        description="Queue background tasks of the Payment Receiving System and follow them.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app)
    docs.install(app)
    openapi.install(app)
    app.add_middleware(
        BodyLimitMiddleware,
        json_bytes=settings.max_json_bytes,
        upload_bytes=settings.max_upload_bytes,
        refuse=problems.too_large,
    )
    app.include_router(health.router)
    app.include_router(queueing.router)
    app.include_router(monitoring.router)
    app.include_router(task_admin.router)
    app.include_router(tasks.router)
    app.include_router(processes.router)
    app.include_router(process_status.router)
    app.include_router(system_health.router)
    app.include_router(schedules.router)
    app.include_router(dead_letters.router)
    app.include_router(notifications.router)
    app.include_router(webhooks.router)
    app.include_router(keys.router)
    app.include_router(housekeeping.router)
    console.mount(app, settings, feed)
    # Added last, so outermost: requests refused by the other middlewares are counted too.
    app.add_middleware(HttpMetricsMiddleware, document=app.openapi)
    return app
