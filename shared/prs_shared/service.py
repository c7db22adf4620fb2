"""Hosting a service process: database, broker, topology, runtime, outbox relay, heartbeats,
metrics and SIGTERM — wired the same way in every service's composition root."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from prometheus_client import start_http_server
from sqlalchemy.ext.asyncio import AsyncEngine

from prs_shared.db.engine import SessionFactory, create_engine, is_sqlite, session_factory
from prs_shared.db.migrations import upgrade
from prs_shared.messaging import catalog
from prs_shared.messaging.envelope import Envelope, utcnow
from prs_shared.messaging.handlers import HandlerRegistry
from prs_shared.messaging.messages import HEARTBEAT, Heartbeat
from prs_shared.messaging.outbox import OutboxRelay
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.runtime import RetryPolicy, Runtime, worker_id
from prs_shared.messaging.topology import Topology, declare_base
from prs_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

BackgroundJob = Callable[["ServiceHost"], Awaitable[None]]


async def connect(settings: ServiceSettings, name: str) -> AbstractRobustConnection:
    """A robust connection (reconnects and restores channels, queues and consumers)."""
    return await aio_pika.connect_robust(
        settings.amqp_url,
        client_properties={"connection_name": name},
        reconnect_interval=1.0,
    )


class ServiceHost:
    """Owns one service process's resources; ``start`` and ``stop`` are symmetric."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        handlers: HandlerRegistry,
        command_queues: Sequence[str],
        migrations: Path,
        background: Sequence[BackgroundJob] = (),
    ) -> None:
        self.settings = settings
        self.service = settings.service_name
        self.worker = worker_id()
        catalog.load_all()
        self.topology = Topology(namespace=settings.namespace)
        self._handlers = handlers
        self._command_queues = command_queues
        self._migrations = migrations
        self._background = background
        self._tasks: list[asyncio.Task[None]] = []
        self._started_at = utcnow()
        self.engine: AsyncEngine
        self.sessions: SessionFactory
        self.connection: AbstractRobustConnection
        self.publisher: Publisher
        self.relay: OutboxRelay
        self.runtime: Runtime

    async def start(self) -> None:
        s = self.settings
        url = s.resolved_database_url()
        self.engine = create_engine(url)
        await upgrade(self.engine, self._migrations)
        self.sessions = session_factory(self.engine)
        self.connection = await connect(s, f"{self.service}:{self.worker}")
        channel = await self.connection.channel()
        await declare_base(channel, self.topology)
        await channel.close()
        self.publisher = await Publisher.open(self.connection, self.topology)
        self.relay = OutboxRelay(self.sessions, self.publisher, lock_rows=not is_sqlite(url))
        self.runtime = Runtime(
            service=self.service,
            connection=self.connection,
            topology=self.topology,
            sessions=self.sessions,
            publisher=self.publisher,
            handlers=self._handlers,
            command_queues=self._command_queues,
            prefetch=s.prefetch,
            retry=RetryPolicy(s.max_retries, s.retry_base_delay, s.retry_max_delay),
            shutdown_grace=s.shutdown_grace,
            on_committed=self.relay.notify,
            started_delay=s.started_announce_delay,
            worker=self.worker,
            batch_size=s.batch_size,
            batch_wait=s.batch_wait,
        )
        self._outbox_task = self._spawn(self.relay.run())
        self._spawn(self._heartbeats())
        for job in self._background:
            self._spawn(job(self))
        await self.runtime.start()
        if s.metrics_port:
            start_http_server(s.metrics_port, addr=s.metrics_host)
        log.info("%s started as %s", self.service, self.worker)

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)
        return task

    async def stop(self) -> None:
        await self.runtime.stop()
        # The relay finishes the pass it is in (confirms awaited) and stops; rows committed after
        # it are durable and leave at the next start. Background jobs are cancelled.
        self.relay.stop()
        for task in self._tasks:
            if task is not self._outbox_task:
                task.cancel()
        await asyncio.wait(self._tasks, timeout=5)
        for task in self._tasks:
            task.cancel()
        await self.publisher.close()
        await self.connection.close()
        await self.engine.dispose()
        log.info("%s stopped", self.service)

    async def _heartbeats(self) -> None:
        while True:
            beat = Heartbeat(
                service=self.service,
                worker=self.worker,
                started_at=self._started_at,
                queues=self.runtime.queue_names,
                in_flight=self.runtime.in_flight,
                processed=self.runtime.processed,
            )
            try:
                await self.publisher.publish(
                    Envelope(type=HEARTBEAT.type, payload=beat.model_dump(mode="json"))
                )
            except Exception:
                log.warning("heartbeat not published", exc_info=True)
            await asyncio.sleep(self.settings.heartbeat_interval)

    async def run_until_signalled(self) -> None:
        """Start, wait for SIGTERM or SIGINT, stop cleanly."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        log.info("signal received; stopping")
        await self.stop()
