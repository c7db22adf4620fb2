"""A consumer that handles deliveries in batches, one transaction per batch.

For idempotent, order-tolerant streams (task lifecycle events, heartbeats) where a transaction per
message would make the database the bottleneck. The batch handler must be idempotent: a batch
whose commit is not followed by its acks is delivered again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from prs_shared.db.engine import SessionFactory
from prs_shared.messaging import catalog
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.runtime import publish_dead_letter
from prs_shared.messaging.topology import Topology, declare_work_queue

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Envelope], AsyncSession], Awaitable[None]]


class BatchConsumer:
    def __init__(
        self,
        *,
        name: str,
        connection: AbstractConnection,
        topology: Topology,
        sessions: SessionFactory,
        publisher: Publisher,
        routing_keys: Sequence[str],
        handler: BatchHandler,
        worker: str,
        max_batch: int = 500,
        max_wait: float = 0.02,
    ) -> None:
        self._name = name
        self._connection = connection
        self._topology = topology
        self._sessions = sessions
        self._publisher = publisher
        self._routing_keys = routing_keys
        self._handler = handler
        self._worker = worker
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._pending: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._channel: AbstractChannel | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._consumer: tuple[object, str] | None = None
        self.queue_name = topology.events_queue(name)

    async def start(self) -> None:
        channel = await self._connection.channel()
        # Twice the batch size, so the next batch is arriving while this one commits.
        await channel.set_qos(prefetch_count=self._max_batch * 2)
        self._channel = channel
        queue = await declare_work_queue(
            channel,
            self._topology,
            self.queue_name,
            self._routing_keys,
            exchange=self._topology.events_exchange,
        )
        tag = await queue.consume(self._on_message)
        self._consumer = (queue, tag)
        self._loop_task = asyncio.ensure_future(self._loop())

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        await self._pending.put(message)

    async def stop(self) -> None:
        if self._consumer is not None:
            queue, tag = self._consumer
            try:
                await queue.cancel(tag)  # type: ignore[attr-defined]
            except Exception:
                log.debug("cancel failed", exc_info=True)
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _loop(self) -> None:
        while True:
            batch = [await self._pending.get()]
            deadline = asyncio.get_running_loop().time() + self._max_wait
            while len(batch) < self._max_batch:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0 and self._pending.empty():
                    break
                try:
                    batch.append(await asyncio.wait_for(self._pending.get(), max(timeout, 0)))
                except TimeoutError:
                    break
            try:
                await self._handle(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("batch of %d failed; returning it to the queue", len(batch))
                for message in batch:
                    try:
                        await message.nack(requeue=True)
                    except Exception:
                        log.debug("nack failed", exc_info=True)
                await asyncio.sleep(1)

    async def _handle(self, batch: list[AbstractIncomingMessage]) -> None:
        good: list[tuple[AbstractIncomingMessage, Envelope]] = []
        for message in batch:
            try:
                envelope = Envelope.model_validate_json(message.body)
                spec = catalog.lookup(envelope.type)
                spec.payload.model_validate(envelope.payload)
            except (ValidationError, catalog.UnknownMessageType) as exc:
                reason = (
                    "unknown_type" if isinstance(exc, catalog.UnknownMessageType) else "invalid"
                )
                await publish_dead_letter(
                    self._publisher, self.queue_name, message, reason, exc, 1, self._worker
                )
                await message.ack()
                continue
            good.append((message, envelope))
        if good:
            async with self._sessions() as session, session.begin():
                await self._handler([e for _, e in good], session)
            for message, _ in good:
                await message.ack()
