"""The consumer runtime every service runs.

Per delivery: decode → look up → validate → (inbox check, handler, inbox record, outbox) in one
transaction → commit → announce the outcome → ack. Failures are decided explicitly:

- the message itself is unusable (bad JSON, unknown type, schema mismatch): dead-lettered at once;
- the handler raised :class:`PermanentError`: dead-lettered at once, task FAILED;
- anything else: retried through a delay queue (the delivery is acked, never held while waiting)
  until the retry limit, then dead-lettered, task DEAD_LETTERED.

Dead-lettered messages carry ``x-dead-letter-reason``, ``x-attempts`` and ``x-last-error``.

With ``batch_size`` 1 (the default) every delivery runs in its own task and transaction, many at
once. With a larger ``batch_size``, usable deliveries are handled in micro-batches, one
transaction per batch, and a batch that fails falls back to this per-message path for each of
its messages; :mod:`prs_shared.messaging.batching` explains how and when to use it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from prs_shared.db.engine import SessionFactory
from prs_shared.db.tables import inbox
from prs_shared.messaging import catalog
from prs_shared.messaging.backoff import retry_delay
from prs_shared.messaging.batching import BatchLoop, Delivery, Outcome, inbox_row, settle
from prs_shared.messaging.envelope import Envelope, utcnow
from prs_shared.messaging.errors import PermanentError
from prs_shared.messaging.handlers import HandlerRegistry
from prs_shared.messaging.inbox import is_cancel_marker
from prs_shared.messaging.messages import LIFECYCLE_STATUS_TYPES, TaskLifecycle, TaskStatus
from prs_shared.messaging.outbox import add_to_outbox
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.topology import RETRY_QUEUE_HEADER, Topology, declare_work_queue
from prs_shared.metrics import DEAD_LETTERS, DUPLICATES, IN_FLIGHT, RETRIES, TASK_DURATION, TASKS

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-attempt"
REASON_HEADER = "x-dead-letter-reason"
ATTEMPTS_HEADER = "x-attempts"
ERROR_HEADER = "x-last-error"
ORIGINAL_QUEUE_HEADER = "x-original-queue"
MAX_ERROR_CHARS = 2000


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 300.0

    def limit_for(self, type_: str | None) -> int:
        if type_ is None:
            return self.max_retries
        try:
            spec = catalog.lookup(type_)
        except catalog.UnknownMessageType:
            return self.max_retries
        return self.max_retries if spec.max_retries is None else spec.max_retries


OnCommitted = Callable[[], None]


class Runtime:
    """Consumes a service's queues and runs its handlers; one instance per process."""

    def __init__(
        self,
        *,
        service: str,
        connection: AbstractConnection,
        topology: Topology,
        sessions: SessionFactory,
        publisher: Publisher,
        handlers: HandlerRegistry,
        command_queues: Sequence[str] = (),
        prefetch: int = 64,
        retry: RetryPolicy | None = None,
        shutdown_grace: float = 25.0,
        on_committed: OnCommitted | None = None,
        started_delay: float = 0.25,
        worker: str | None = None,
        batch_size: int = 1,
        batch_wait: float = 0.002,
    ) -> None:
        self.service = service
        self.worker = worker or worker_id()
        self._connection = connection
        self._topology = topology
        self._sessions = sessions
        self._publisher = publisher
        self._handlers = handlers
        self._command_queues = list(command_queues)
        self._prefetch = prefetch
        self._retry = retry or RetryPolicy()
        self._grace = shutdown_grace
        self._on_committed = on_committed
        self._started_delay = started_delay
        self._channel: AbstractChannel | None = None
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.processed = 0
        self.queue_names: list[str] = []
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batches: BatchLoop | None = None
        if batch_size > 1:
            self.batches = BatchLoop(
                size=batch_size,
                wait=batch_wait,
                sessions=sessions,
                topology=topology,
                service=service,
                worker=self.worker,
                started_delay=started_delay,
                handle_alone=self.handle,
                conclude=self.conclude,
                announce_started=self._announce_started,
                on_committed=on_committed,
            )

    @property
    def in_flight(self) -> int:
        """Deliveries received and not yet acked (or given up)."""
        return len(self._tasks) + (self.batches.in_flight if self.batches is not None else 0)

    async def start(self) -> None:
        """Declare this service's queues and start consuming them."""
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        self._channel = channel
        t = self._topology
        queues: list[AbstractQueue] = []
        for name in self._command_queues:
            queues.append(
                await declare_work_queue(
                    channel, t, t.queue(name), [name], exchange=t.commands_exchange
                )
            )
        event_types = self._handlers.event_types()
        if event_types:
            queues.append(
                await declare_work_queue(
                    channel,
                    t,
                    t.events_queue(self.service),
                    event_types,
                    exchange=t.events_exchange,
                )
            )
        if self.batches is not None:
            self.batches.start()
        for queue in queues:
            tag = await queue.consume(self._deliver(queue.name))
            self._consumers.append((queue, tag))
            self.queue_names.append(queue.name)
        log.info("consuming %s", ", ".join(self.queue_names))

    def _deliver(self, queue_name: str) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def on_message(message: AbstractIncomingMessage) -> None:
            # aio-pika runs each delivery in its own task; keep a handle for graceful stop.
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            IN_FLIGHT.labels(self.service).inc()
            handed_over = False
            try:
                if self.batches is None:
                    await self.process(queue_name, message)
                elif (delivery := await self.accept(queue_name, message)) is not None:
                    # From here the batch loop counts the delivery in flight and settles it. It
                    # refuses only once stopped: then the delivery stays unacked and comes back.
                    handed_over = self.batches.put(delivery)
            except Exception:
                # Never reached for a handler's own error; this is the broker going away while
                # acking or publishing. The delivery stays unacked and comes back.
                log.warning("delivery on %s left unacked", queue_name, exc_info=True)
            finally:
                if not handed_over:
                    IN_FLIGHT.labels(self.service).dec()
                self._tasks.discard(task)

        return on_message

    async def stop(self) -> None:
        """Stop consuming, let in-flight work finish (up to the grace period), close."""
        for queue, tag in self._consumers:
            try:
                await queue.cancel(tag)
            except Exception:
                log.debug("consumer cancel failed", exc_info=True)
        self._consumers.clear()
        pending: set[asyncio.Future[None]] = set(self._tasks)
        if self.batches is not None:
            pending.add(asyncio.ensure_future(self.batches.drain()))
        if pending:
            if self.in_flight:
                log.info("waiting for %d in-flight messages", self.in_flight)
            _, still = await asyncio.wait(pending, timeout=self._grace)
            for task in still:
                # Uncommitted work rolls back; the unacked delivery returns to its queue when the
                # channel closes.
                task.cancel()
            if still and self.batches is not None:
                still |= self.batches.cancel()
            if still:
                await asyncio.wait(still, timeout=5)
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    # --- one delivery -------------------------------------------------------------------------

    async def process(self, queue_name: str, message: AbstractIncomingMessage) -> None:
        """Handle one delivery on its own, from decoding to ack."""
        delivery = await self.accept(queue_name, message)
        if delivery is not None:
            await self.handle(delivery)

    async def accept(self, queue_name: str, message: AbstractIncomingMessage) -> Delivery | None:
        """Decode, look up and validate a delivery; an unusable one is dead-lettered (None)."""
        attempt = _attempt(message)
        try:
            envelope = Envelope.model_validate_json(message.body)
        except ValidationError as exc:
            await self._dead_letter(queue_name, message, None, "invalid_envelope", exc, attempt)
            return None
        handler = self._handlers.get(envelope.type)
        if handler is None:
            known = "not in the catalog"
            try:
                catalog.lookup(envelope.type)
                known = f"not handled by {self.service}"
            except catalog.UnknownMessageType:
                pass
            error = PermanentError(f"unknown message type {envelope.type!r}: {known}")
            await self._dead_letter(queue_name, message, envelope, "unknown_type", error, attempt)
            return None
        spec = catalog.lookup(envelope.type)
        try:
            payload = spec.payload.model_validate(envelope.payload)
        except ValidationError as exc:
            await self._dead_letter(queue_name, message, envelope, "schema_mismatch", exc, attempt)
            return None
        delivery = Delivery(queue_name, message, envelope, handler, payload, attempt)
        delivery.bind_log_context()
        return delivery

    async def handle(self, delivery: Delivery) -> None:
        """Run a usable delivery's handler in its own transaction, then settle the delivery."""
        envelope, message = delivery.envelope, delivery.message
        queue_name, attempt = delivery.queue, delivery.attempt
        started = self._announce_started_later(delivery)
        t0 = time.perf_counter()
        try:
            outcome = await self._run(delivery, t0)
        except PermanentError as exc:
            await settle(started)
            await self._dead_letter(
                queue_name, message, envelope, "permanent_error", exc, attempt, TaskStatus.FAILED
            )
            return
        except Exception as exc:  # everything else is worth another try
            await settle(started)
            await self._retry_or_dead_letter(queue_name, message, envelope, exc, attempt)
            return
        await settle(started)
        await self.conclude(delivery, outcome)

    async def conclude(self, delivery: Delivery, outcome: Outcome) -> None:
        """After the commit: announce the outcome, ack, count."""
        envelope, queue_name, attempt = delivery.envelope, delivery.queue, delivery.attempt
        if outcome.duplicate and is_cancel_marker(outcome.result):
            await self._announce(envelope, queue_name, TaskStatus.CANCELLED, attempt)
            await delivery.message.ack()
            TASKS.labels(self.service, envelope.type, "cancelled").inc()
            return
        if envelope.task_id:
            await self._announce(
                envelope,
                queue_name,
                TaskStatus.SUCCEEDED,
                attempt,
                result=outcome.result,
                duration_ms=outcome.duration_ms,
            )
        await delivery.message.ack()
        self.processed += 1
        outcome_label = "duplicate" if outcome.duplicate else "succeeded"
        TASKS.labels(self.service, envelope.type, outcome_label).inc()
        if outcome.duplicate:
            DUPLICATES.labels(self.service, envelope.type).inc()
        else:
            TASK_DURATION.labels(self.service, envelope.type).observe(outcome.duration_ms / 1000)

    async def _run(self, delivery: Delivery, t0: float) -> Outcome:
        """Run the handler in one transaction with the inbox record."""
        message_id = delivery.message_id
        try:
            async with self._sessions() as session, session.begin():
                prior = (
                    await session.execute(
                        select(inbox.c.result, inbox.c.duration_ms).where(
                            inbox.c.message_id == message_id
                        )
                    )
                ).first()
                if prior is not None:
                    return Outcome(True, prior.result, prior.duration_ms or 0.0)
                ctx = delivery.context(session, self.service, self.worker)
                result = await delivery.handler(delivery.payload, ctx)
                duration_ms = (time.perf_counter() - t0) * 1000
                await session.execute(
                    insert(inbox).values(**inbox_row(delivery.envelope, result, duration_ms))
                )
                await add_to_outbox(session, ctx.staged, self._topology)
        except IntegrityError:
            # Another worker committed the same message id first (a duplicate delivered twice
            # at once): its effect stands, ours rolled back.
            async with self._sessions() as session:
                row = (
                    await session.execute(
                        select(inbox.c.result, inbox.c.duration_ms).where(
                            inbox.c.message_id == message_id
                        )
                    )
                ).first()
            if row is None:
                raise
            return Outcome(True, row.result, row.duration_ms or 0.0)
        if ctx.staged and self._on_committed is not None:
            self._on_committed()
        return Outcome(False, result, duration_ms)

    # --- outcomes -----------------------------------------------------------------------------

    def _announce_started_later(self, delivery: Delivery) -> asyncio.Task[None] | None:
        """Announce STARTED only for a task still running after ``started_delay`` seconds.

        Most tasks finish sooner: their SUCCEEDED (which carries the duration) is then the only
        lifecycle message, which saves a persistent, confirmed publish and a registry write per
        task. A long task still shows STARTED while it runs.
        """
        if delivery.envelope.task_id is None:
            return None

        async def later() -> None:
            await asyncio.sleep(self._started_delay)
            await self._announce_started(delivery)

        return asyncio.ensure_future(later())

    async def _announce_started(self, delivery: Delivery) -> None:
        await self._announce(
            delivery.envelope, delivery.queue, TaskStatus.STARTED, delivery.attempt, quiet=True
        )

    async def _announce(
        self,
        envelope: Envelope,
        queue_name: str,
        status: TaskStatus,
        attempt: int,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        duration_ms: float | None = None,
        retry_at: Any = None,
        quiet: bool = False,
    ) -> None:
        """Publish a task lifecycle event for a command that carries a task id."""
        if envelope.task_id is None:
            return
        lifecycle = TaskLifecycle(
            task_id=envelope.task_id,
            task_type=envelope.type,
            status=status,
            queue=queue_name,
            service=self.service,
            worker=self.worker,
            attempt=attempt,
            at=utcnow(),
            duration_ms=duration_ms,
            result=result,
            error=error,
            retry_at=retry_at,
        )
        event = envelope.caused(LIFECYCLE_STATUS_TYPES[status], lifecycle, task_id=envelope.task_id)
        try:
            await self._publisher.publish(event)
        except Exception:
            if not quiet:
                raise
            log.warning("could not announce %s", status.value, exc_info=True)

    async def _retry_or_dead_letter(
        self,
        queue_name: str,
        message: AbstractIncomingMessage,
        envelope: Envelope,
        exc: Exception,
        attempt: int,
    ) -> None:
        limit = self._retry.limit_for(envelope.type)
        if attempt > limit:
            await self._dead_letter(
                queue_name, message, envelope, "retries_exhausted", exc, attempt
            )
            return
        delay = retry_delay(attempt, base=self._retry.base_delay, cap=self._retry.max_delay)
        delay_ms = max(1, int(delay * 1000))
        headers = dict(message.headers or {})
        headers.pop("x-death", None)
        headers.update(
            {
                ATTEMPT_HEADER: attempt + 1,
                RETRY_QUEUE_HEADER: queue_name,
                ERROR_HEADER: _error_text(exc),
            }
        )
        retry = aio_pika.Message(
            body=message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            type=message.type,
            priority=message.priority,
            expiration=timedelta(milliseconds=delay_ms),
        )
        tier = self._topology.delay_tier(delay_ms)
        await self._publisher.publish_raw("", self._topology.delay_queue(tier), retry)
        log.warning(
            "attempt %d of %s failed, retrying in %.2fs: %s",
            attempt,
            envelope.type,
            delay,
            _error_text(exc),
            exc_info=not isinstance(exc, PermanentError | TimeoutError | ConnectionError),
        )
        await self._announce(
            envelope,
            queue_name,
            TaskStatus.RETRYING,
            attempt,
            error=_error_text(exc),
            retry_at=utcnow() + timedelta(milliseconds=delay_ms),
            quiet=True,
        )
        await message.ack()
        RETRIES.labels(self.service, envelope.type).inc()
        TASKS.labels(self.service, envelope.type, "retried").inc()

    async def _dead_letter(
        self,
        queue_name: str,
        message: AbstractIncomingMessage,
        envelope: Envelope | None,
        reason: str,
        exc: BaseException,
        attempt: int,
        status: TaskStatus = TaskStatus.DEAD_LETTERED,
    ) -> None:
        """Copy the message to ``<queue>.dlq`` with why it failed, confirm, then ack it."""
        error = await publish_dead_letter(
            self._publisher, queue_name, message, reason, exc, attempt, self.worker
        )
        if envelope is not None:
            await self._announce(envelope, queue_name, status, attempt, error=f"{reason}: {error}")
        await message.ack()
        type_ = envelope.type if envelope else "unknown"
        DEAD_LETTERS.labels(self.service, queue_name, reason).inc()
        TASKS.labels(self.service, type_, status.value.lower()).inc()


async def publish_dead_letter(
    publisher: Publisher,
    queue_name: str,
    message: AbstractIncomingMessage,
    reason: str,
    exc: BaseException,
    attempt: int,
    worker: str,
) -> str:
    """Publish a copy of ``message`` to its queue's DLQ with the failure in headers."""
    error = _error_text(exc)
    headers = dict(message.headers or {})
    headers.pop("x-death", None)
    headers.update(
        {
            REASON_HEADER: reason,
            ATTEMPTS_HEADER: attempt,
            ERROR_HEADER: error,
            ORIGINAL_QUEUE_HEADER: queue_name,
            "x-dead-lettered-at": utcnow().isoformat(),
            "x-dead-lettered-by": worker,
        }
    )
    dead = aio_pika.Message(
        body=message.body,
        headers=headers,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        type=message.type,
        priority=message.priority,
    )
    await publisher.publish_raw(publisher.topology.dead_letter_exchange, queue_name, dead)
    log.error("dead-lettered from %s (%s): %s", queue_name, reason, error)
    return error


def _attempt(message: AbstractIncomingMessage) -> int:
    raw = (message.headers or {}).get(ATTEMPT_HEADER, 1)
    if isinstance(raw, int | str):
        try:
            return max(1, int(raw))
        except ValueError:
            return 1
    return 1


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]
