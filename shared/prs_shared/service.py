"""Hosting a service process: database, broker, topology, runtime, outbox relay, heartbeats,
metrics and SIGTERM — wired the same way in every service's composition root."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from prometheus_client import start_http_server
from sqlalchemy.ext.asyncio import AsyncEngine
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from prs_shared.db import single_writer
from prs_shared.db.engine import SessionFactory, create_engine, is_sqlite, session_factory
from prs_shared.db.migrations import upgrade
from prs_shared.messaging import catalog
from prs_shared.messaging.envelope import Envelope, utcnow
from prs_shared.messaging.failover import FailoverConnection, broker_addresses, split_urls
from prs_shared.messaging.handlers import HandlerRegistry
from prs_shared.messaging.messages import HEARTBEAT, Heartbeat
from prs_shared.messaging.outbox import OutboxRelay
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.runtime import RetryPolicy, Runtime, worker_id
from prs_shared.messaging.subscription import Subscription, dispatch
from prs_shared.messaging.topology import declare_base, declare_work_queue
from prs_shared.recycling import RECYCLES, RecyclePolicy, recycles_so_far, reexec, resident_bytes
from prs_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})

BackgroundJob = Callable[["ServiceHost"], Awaitable[None]]
MoreSubscriptions = Callable[["ServiceHost"], Sequence[Subscription]]


class StartupError(RuntimeError):
    """A service cannot start for a reason the operator must fix; the message says which."""


def _log_broker_wait(settings: ServiceSettings, state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning(
        "RabbitMQ is not answering at %s (%s); retrying in %.0fs",
        broker_addresses(settings.amqp_url),
        type(exc).__name__ if exc else "no answer",
        wait,
    )


async def connect(settings: ServiceSettings, name: str) -> AbstractRobustConnection:
    """A robust connection (reconnects and restores channels, queues and consumers).

    A broker that is down when the service starts is waited for with growing pauses (a line in
    the log each time, no traceback), as it is when it goes away later. With several URLs in
    ``AMQP_URL`` (the nodes of a cluster) each attempt starts at the next node, and a connection
    that is lost later reconnects to another node.
    """
    urls = split_urls(settings.amqp_url)
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((ConnectionError, OSError, asyncio.TimeoutError)),
        wait=wait_exponential(multiplier=0.5, max=15),
        before_sleep=functools.partial(_log_broker_wait, settings),
        reraise=True,
    ):
        with attempt:
            if len(urls) == 1:
                return await aio_pika.connect_robust(
                    urls[0],
                    client_properties={"connection_name": name},
                    reconnect_interval=1.0,
                )
            connection = FailoverConnection(
                urls,
                start=attempt.retry_state.attempt_number - 1,
                client_properties={"connection_name": name},
                reconnect_interval=1.0,
            )
            try:
                await connection.connect()
            except BaseException:
                await asyncio.shield(_close_quietly(connection))
                raise
            return connection
    raise AssertionError("unreachable")  # AsyncRetrying either returns or raises


async def _close_quietly(connection: AbstractRobustConnection) -> None:
    try:
        await connection.close()
    except Exception:
        log.debug("closing a connection that never opened", exc_info=True)


def serve_metrics(settings: ServiceSettings) -> None:
    try:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    except OSError as exc:
        field = type(settings).model_fields["metrics_port"]
        variable = field.validation_alias or "PRS_METRICS_PORT"
        raise StartupError(
            f"{settings.service_name}: cannot serve metrics on "
            f"{settings.metrics_host}:{settings.metrics_port} ({exc.strerror or exc}); "
            f"set {variable} to a free port, or 0 to turn the endpoint off"
        ) from None


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
        subscriptions: MoreSubscriptions | None = None,
    ) -> None:
        self.settings = settings
        self.service = settings.service_name
        self.worker = worker_id()
        catalog.load_all()
        self.topology = settings.topology()
        self._handlers = handlers
        self._command_queues = command_queues
        self._migrations = migrations
        self._background = background
        self._more_subscriptions = subscriptions
        self._tasks: list[asyncio.Task[None]] = []
        self._release_database: Callable[[], None] = lambda: None
        self._started_at = utcnow()
        self.recycling = RecyclePolicy(
            max_tasks=settings.max_tasks_per_worker,
            max_memory_bytes=settings.max_memory_mb * 2**20,
        )
        """Only a process run by :meth:`run_until_signalled` recycles (not a host in a test or
        in the gateway's lifespan)."""
        self.recycle_reason: str | None = None
        self._recycle_requested = asyncio.Event()
        self._may_recycle = False
        self.engine: AsyncEngine
        self.sessions: SessionFactory
        self.connection: AbstractRobustConnection
        self.publisher: Publisher
        self.relay: OutboxRelay
        self.runtime: Runtime

    def subscriptions(self) -> list[Subscription]:
        """One subscription per command queue, one for the events this service handles."""
        s, t = self.settings, self.topology
        work = dispatch(self._handlers, s.resolved_time_limits())
        accepts = frozenset(self._handlers.types())
        # Batch size 1: deliveries run concurrently, up to the prefetch. Larger batches commit
        # one at a time while the previous one is being announced and acked.
        concurrency = s.prefetch if s.batch_size == 1 else 2

        def subscription(queue: str, keys: Sequence[str], exchange: str) -> Subscription:
            return Subscription(
                queue=queue,
                declare=functools.partial(
                    declare_work_queue,
                    topology=t,
                    queue_name=queue,
                    routing_keys=list(keys),
                    exchange=exchange,
                ),
                work=work,
                accepts=accepts,
                batch_size=s.batch_size,
                batch_wait=s.batch_wait,
                concurrency=concurrency,
            )

        subs = [
            subscription(t.queue(name), [name], t.commands_exchange)
            for name in self._command_queues
        ]
        event_types = self._handlers.event_types()
        if event_types:
            subs.append(subscription(t.events_queue(self.service), event_types, t.events_exchange))
        return subs

    async def start(self) -> None:
        s = self.settings
        if s.metrics_port:
            # First: a port that is taken stops the start before anything is consumed.
            serve_metrics(s)
        url = s.resolved_database_url()
        try:
            self._release_database = await single_writer.claim(url)
        except single_writer.DatabaseInUse as exc:
            raise StartupError(f"{self.service}: {exc}") from None
        self.engine = create_engine(url, pool_size=s.db_pool_size, max_overflow=s.db_pool_overflow)
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
            prefetch=s.prefetch,
            retry=RetryPolicy(
                s.max_retries,
                s.retry_base_delay,
                s.retry_max_delay,
                crash_limit=s.crash_limit,
                outage_limit=s.database_outage_seconds,
            ),
            shutdown_grace=s.shutdown_grace,
            on_committed=self.relay.notify,
            started_delay=s.started_announce_delay,
            worker=self.worker,
            on_settled=self._after_settled if self._may_recycle else None,
        )
        for sub in self.subscriptions():
            self.runtime.subscribe(sub)
        if self._more_subscriptions is not None:
            for sub in self._more_subscriptions(self):
                self.runtime.subscribe(sub)
        self._outbox_task = self._spawn(self.relay.run())
        self._spawn(self._heartbeats())
        for job in self._background:
            self._spawn(job(self))
        await self.runtime.start()
        recycled = recycles_so_far()
        RECYCLES.labels(self.service).inc(recycled)
        log.info(
            "%s started as %s%s",
            self.service,
            self.worker,
            f" (recycled: {recycled})" if recycled else "",
        )
        self._warn_of_a_low_memory_limit()

    def _warn_of_a_low_memory_limit(self) -> None:
        if not (self._may_recycle and self.recycling.max_memory_bytes):
            return
        rss = resident_bytes()
        if rss is None:
            log.warning("PRS_MAX_MEMORY_MB is set but resident memory cannot be read here")
        elif rss > self.recycling.max_memory_bytes:
            log.warning(
                "PRS_MAX_MEMORY_MB=%d is below this process's size at start (%.0f MB): it will "
                "restart after every task",
                self.settings.max_memory_mb,
                rss / 2**20,
            )

    def _after_settled(self, settled: int) -> None:
        if self.recycle_reason is not None:
            return
        reason = self.recycling.reason(settled)
        if reason is None:
            return
        self.recycle_reason = reason
        log.info(
            "%s recycling after %s; handing back what it has not started", self.service, reason
        )
        self.runtime.hand_back()
        self._recycle_requested.set()

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
        self._release_database()
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
        """Start, wait for SIGTERM or SIGINT, stop cleanly (also while still waiting to start).

        Past ``PRS_MAX_TASKS_PER_WORKER`` or ``PRS_MAX_MEMORY_MB`` the process stops as for
        SIGTERM and then starts afresh in place (:mod:`prs_shared.recycling`).
        """
        self._may_recycle = self.recycling.enabled
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop.set)
        # A recycled process starts with these blocked (see reexec): one sent while it was
        # restarting is pending, and is delivered to the handler now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        starting = asyncio.ensure_future(self.start())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            log.info("signal received while starting; exiting")
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return
        stopping.cancel()
        if isinstance(starting.exception(), StartupError):
            # One line for the operator, and the exit status of a failed start.
            log.error("%s", starting.exception())
            raise SystemExit(1)
        starting.result()  # any other failed start raises here, with its traceback
        signalled = asyncio.ensure_future(stop.wait())
        recycle = asyncio.ensure_future(self._recycle_requested.wait())
        await asyncio.wait({signalled, recycle}, return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        recycle.cancel()
        if stop.is_set():
            log.info("signal received; stopping")
            await self.stop()
            return
        await self.stop()
        if stop.is_set():
            log.info("signal received while recycling; not restarting")
            return
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        reexec(STOP_SIGNALS)
