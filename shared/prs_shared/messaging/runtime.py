"""The consumer runtime: one delivery path for every subscription of a process.

Per subscription, a loop collects deliveries into batches (a single message is a batch of one)
and hands each batch to three steps, each in its own module:

1. **decode** (:mod:`delivery`): envelope, type, payload. An unusable delivery (bad JSON, a type
   this subscription does not handle, a payload that breaks its schema) is dead-lettered at once.
2. **unit of work** (:mod:`unit_of_work`): inbox check, the subscription's work, inbox and outbox
   rows, one transaction for the batch.
3. **settle** (:mod:`settling`): announce outcomes and ack after the commit; on failure retry
   through a delay queue (the delivery is acked, never held while it waits) or dead-letter.

Every failure is bounded:

- a batch that fails falls back to its messages one at a time, each in its own transaction;
- a message that fails alone is retried up to the retry limit, or dead-lettered at once for a
  :class:`PermanentError`; then the consumer moves on;
- a handler runs within its type's hard time limit (:mod:`time_limits`): past it, it is cancelled
  and its delivery fails like any other, with reason ``time_limit``; in a batch, that one delivery
  fails at once and the others are handled alone;
- a message that comes back unsettled (``redelivered``: its worker died or lost the broker while
  holding it) runs alone, after its start is counted (:mod:`crash_guard`); past the crash limit it
  is dead-lettered with reason ``crash_loop`` instead of run;
- if settling itself fails while the channel lives (a confirm timed out, say), the delivery is
  returned to its queue, comes back redelivered and is counted as above.

Nothing requeues without a bound. A batch's handlers run one after another in one transaction, so
batch services whose handlers are quick database work; handlers with slow outside I/O (SMTP,
HTTP) want batch size 1, where deliveries are handled concurrently, each in its own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from prs_shared.db.engine import SessionFactory
from prs_shared.db.outage import database_unavailable
from prs_shared.messaging.crash_guard import count_start
from prs_shared.messaging.delivery import Delivery, Rejected, decode_envelope, decode_raw
from prs_shared.messaging.headers import (  # re-exported: the runtime's header names
    ATTEMPT_HEADER,
    ATTEMPTS_HEADER,
    ERROR_HEADER,
    ORIGINAL_QUEUE_HEADER,
    REASON_HEADER,
    attempt_of,
)
from prs_shared.messaging.messages import TaskStatus
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.settling import RetryPolicy, Settler
from prs_shared.messaging.subscription import Subscription
from prs_shared.messaging.time_limits import TimeLimitExceeded
from prs_shared.messaging.topology import Topology
from prs_shared.messaging.unit_of_work import UnitOfWork
from prs_shared.metrics import IN_FLIGHT

__all__ = [
    "ATTEMPTS_HEADER",
    "ATTEMPT_HEADER",
    "ERROR_HEADER",
    "ORIGINAL_QUEUE_HEADER",
    "REASON_HEADER",
    "RetryPolicy",
    "Runtime",
    "worker_id",
]

log = logging.getLogger(__name__)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class CrashLoop(RuntimeError):
    """A redelivered message past the crash limit."""


class Runtime:
    """Runs a process's subscriptions; one instance per process."""

    def __init__(
        self,
        *,
        service: str,
        connection: AbstractConnection,
        topology: Topology,
        sessions: SessionFactory,
        publisher: Publisher,
        prefetch: int = 64,
        retry: RetryPolicy | None = None,
        shutdown_grace: float = 25.0,
        on_committed: Callable[[], None] | None = None,
        started_delay: float = 0.25,
        worker: str | None = None,
        on_settled: Callable[[int], None] | None = None,
    ) -> None:
        self.service = service
        self.worker = worker or worker_id()
        self._connection = connection
        self._prefetch = prefetch
        self._grace = shutdown_grace
        self.started_delay = started_delay
        self.settler = Settler(
            publisher=publisher, service=service, worker=self.worker, retry=retry or RetryPolicy()
        )
        self.unit = UnitOfWork(sessions, topology, service, self.worker, on_committed)
        self._consumers: list[Consumer] = []
        self._started = False
        self._stopped = False
        self._on_settled = on_settled
        self.settled = 0
        """Deliveries settled (whatever their outcome) since this runtime started."""

    def subscribe(self, sub: Subscription) -> None:
        """Add a subscription; before :meth:`start`."""
        if self._started:
            raise RuntimeError("subscribe before start")
        self._consumers.append(Consumer(self, sub, sub.prefetch or self._prefetch))

    @property
    def queue_names(self) -> list[str]:
        return [c.sub.queue for c in self._consumers]

    @property
    def in_flight(self) -> int:
        """Deliveries received and not yet settled (or given back)."""
        return sum(c.in_flight for c in self._consumers)

    @property
    def processed(self) -> int:
        return self.settler.processed

    @property
    def committed(self) -> int:
        """Batches committed (a message handled on its own is a batch of one)."""
        return sum(c.committed for c in self._consumers)

    @property
    def rolled_back(self) -> int:
        """Batches that failed and were handled again one message at a time."""
        return sum(c.rolled_back for c in self._consumers)

    def settled_some(self, n: int) -> None:
        self.settled += n
        if self._on_settled is not None:
            self._on_settled(self.settled)

    def hand_back(self) -> None:
        """Take no more deliveries; those received and not started go back to their queues.

        What is in progress finishes; :meth:`stop` then closes the channels, which returns every
        delivery not settled to its queue. For recycling a worker (docs/adr/0009).
        """
        for consumer in self._consumers:
            consumer.hand_back()

    async def start(self) -> None:
        """Declare every subscription's queue and start consuming."""
        self._started = True
        for consumer in self._consumers:
            channel = await self._connection.channel()
            await channel.set_qos(prefetch_count=consumer.prefetch)
            await consumer.start(channel)
        log.info("consuming %s", ", ".join(self.queue_names))

    async def stop(self) -> None:
        """Stop consuming, let in-flight work finish (up to the grace period), close."""
        if self._stopped or not self._started:
            return
        self._stopped = True
        for consumer in self._consumers:
            await consumer.cancel()
        pending: set[asyncio.Future[None]] = set()
        for consumer in self._consumers:
            pending |= consumer.drain()
        if pending:
            if self.in_flight:
                log.info("waiting for %d in-flight messages", self.in_flight)
            _, still = await asyncio.wait(pending, timeout=self._grace)
            for task in still:
                # Uncommitted work rolls back; unacked deliveries return to their queues when the
                # channel closes.
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=5)
        for consumer in self._consumers:
            await consumer.close()


class Consumer:
    """One subscription's loop: collect → decode → unit of work → settle."""

    def __init__(self, runtime: Runtime, sub: Subscription, prefetch: int) -> None:
        self.runtime = runtime
        self.sub = sub
        self.prefetch = prefetch
        self._settler = runtime.settler
        self._unit = runtime.unit
        self._ready: deque[AbstractIncomingMessage] = deque()
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(sub.concurrency)
        # Redelivered messages run alone and one at a time: if one of them kills the process,
        # only its own crash count grows.
        self._alone = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._closing = False
        self._handing_back = False
        # Deliveries taken from the broker and not yet settled or given back, by identity.
        self._held: set[int] = set()
        # Deliveries unsettled on a channel (also those given back, until it closes): a multiple
        # ack must not reach one of them.
        self._unacked: dict[int, AbstractIncomingMessage] = {}
        self.committed = 0
        self.rolled_back = 0

    async def start(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._queue = await self.sub.declare(channel)
        self._loop_task = asyncio.ensure_future(self._run())
        self._loop_task.add_done_callback(_report_crash)
        self._tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._closing:
            return  # not taken: it returns to the queue when the channel closes
        self._ready.append(message)
        self._held.add(id(message))
        self._unacked[id(message)] = message
        IN_FLIGHT.labels(self.runtime.service).inc()
        self._arrived.set()

    @property
    def in_flight(self) -> int:
        return len(self._held)

    async def cancel(self) -> None:
        if self._queue is not None and self._tag is not None:
            try:
                await self._queue.cancel(self._tag)
            except Exception:
                log.debug("consumer cancel failed", exc_info=True)
        self._tag = None

    def hand_back(self) -> None:
        self._closing = True
        self._handing_back = True
        self._arrived.set()
        waiting = list(self._ready)
        self._ready.clear()
        # Unacked: the broker returns them when the channel closes.
        self._let_go(waiting)

    def drain(self) -> set[asyncio.Future[None]]:
        """Handle what has been delivered already, then stop; returns what to wait for."""
        self._closing = True
        self._arrived.set()
        pending: set[asyncio.Future[None]] = set(self._tasks)
        if self._loop_task is not None:
            pending.add(self._loop_task)
        return pending

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._ready.clear()
        self._unacked.clear()
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()
        # What was never taken, and what a straggler still cancelling holds (a thread blocked on
        # SQLite's lock, say), can be settled on no channel now: it is back on its queue.
        if self._held:
            IN_FLIGHT.labels(self.runtime.service).dec(len(self._held))
            self._held.clear()

    # --- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        while batch := await self._collect():
            await self._slots.acquire()
            if self._handing_back:  # collected while waiting for a slot: not started either
                self._slots.release()
                self._let_go(batch)
                continue
            task = asyncio.ensure_future(self._process(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _collect(self) -> list[AbstractIncomingMessage]:
        """The next batch; empty once draining and nothing is left."""
        while not self._ready:
            if self._closing:
                return []
            self._arrived.clear()
            await self._arrived.wait()
        size = self.sub.batch_size
        if size > 1 and len(self._ready) < size and self.sub.batch_wait > 0:
            await self._gather(size)
        return [self._ready.popleft() for _ in range(min(size, len(self._ready)))]

    async def _gather(self, size: int) -> None:
        """Wait for more deliveries while they keep coming, up to ``batch_wait``.

        Under load the broker streams up to ``prefetch`` deliveries and a moment's wait fills
        the batch; on a quiet queue the wait would only delay a lone message. So the wait ends
        at the first quiet gap (a tenth of ``batch_wait``) in which nothing arrived.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.sub.batch_wait
        gap = max(self.sub.batch_wait / 10, 0.0005)
        while len(self._ready) < size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            before = len(self._ready)
            await asyncio.sleep(min(gap, remaining))
            if len(self._ready) == before:
                return

    async def _process(self, messages: list[AbstractIncomingMessage]) -> None:
        try:
            fresh: list[Delivery] = []
            again: list[Delivery] = []
            for message in messages:
                delivery = await self._decode(message)
                if delivery is not None:
                    (again if delivery.redelivered else fresh).append(delivery)
            if fresh:
                await self._batch(fresh)
            for delivery in again:
                async with self._alone:
                    await self._alone_one(delivery, count_crashes=True)
        finally:
            # Cancelled past the grace period: what is left unsettled returns with the channel.
            self._let_go(messages)
            self._slots.release()

    async def _decode(self, message: AbstractIncomingMessage) -> Delivery | None:
        queue = self.sub.queue
        try:
            if self.sub.accepts is None:
                return decode_raw(queue, message)
            return decode_envelope(queue, message, self.sub.accepts, self.runtime.service)
        except Exception as exc:
            if isinstance(exc, Rejected):
                rejected = exc
            else:  # a decoder bug must not stall the queue either
                log.exception("could not decode a delivery on %s", queue)
                rejected = Rejected("invalid_envelope", exc)
            delivery = Delivery(queue, message, attempt_of(message.headers), rejected.envelope)
            await self._settle(
                [delivery],
                self._settler.dead_letter(self.sub, delivery, rejected.reason, rejected.error),
            )
        return None

    async def _batch(self, batch: list[Delivery]) -> None:
        started = self._announce_started_later(batch)
        try:
            outcomes = await self._unit.commit(self.sub, batch)
        except asyncio.CancelledError:
            _drop(started)
            raise
        except Exception as exc:
            await _finish(started)
            if len(batch) == 1 or database_unavailable(exc):
                # With the database away, each on its own would only find it away again.
                for delivery in batch:
                    await self._settle([delivery], self._settler.fail(self.sub, delivery, exc))
                return
            slow = _ran_over(exc, batch)
            if slow is not None:
                # The one that ran over fails now instead of running over again on its own.
                await self._settle([slow], self._settler.fail(self.sub, slow, exc))
                batch = [d for d in batch if d is not slow]
            self.rolled_back += 1
            log.info(
                "batch of %d rolled back (%s: %s); handling each message on its own",
                len(batch),
                type(exc).__name__,
                exc,
            )
            # In delivery order, one transaction each: what made the batch fail (a conflict
            # between two of its messages, say) resolves the same way every time.
            for delivery in batch:
                await self._alone_one(delivery)
            return
        await _finish(started)
        self.committed += 1
        await self._settle(batch, self._settler.conclude(self.sub, batch, outcomes, self._ack))

    async def _ack(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        """Ack a committed batch: one ``multiple`` ack when that settles exactly the batch."""
        last = covering_ack(messages, self._unacked.values())
        if last is not None:
            await last.ack(multiple=True)
            return
        for message in messages:
            await message.ack()

    async def _alone_one(self, delivery: Delivery, *, count_crashes: bool = False) -> None:
        delivery.bind_log_context()
        started = self._announce_started_later([delivery])
        try:
            if count_crashes:
                crashes = await count_start(self._unit.sessions, delivery.key)
                if crashes > self._settler.retry.crash_limit:
                    await _finish(started)
                    error = CrashLoop(
                        f"delivered {crashes + 1} times; each time the worker holding it stopped"
                    )
                    await self._settle(
                        [delivery],
                        self._settler.dead_letter(self.sub, delivery, "crash_loop", error),
                    )
                    return
            [outcome] = await self._unit.commit(self.sub, [delivery], forget_crashes=count_crashes)
        except asyncio.CancelledError:
            _drop(started)
            raise
        except Exception as exc:
            await _finish(started)
            await self._settle([delivery], self._settler.fail(self.sub, delivery, exc))
            return
        await _finish(started)
        await self._settle(
            [delivery], self._settler.conclude(self.sub, [delivery], [outcome], self._ack)
        )

    async def _settle(self, deliveries: Sequence[Delivery], settling: Awaitable[None]) -> None:
        """Run a settling step; whatever it leaves unsettled goes back to the queue."""
        try:
            await settling
            for delivery in deliveries:  # settled, also those a multiple ack covered
                self._unacked.pop(id(delivery.message), None)
        except Exception:
            log.warning(
                "could not settle %d deliveries on %s; returning them",
                len(deliveries),
                self.sub.queue,
                exc_info=True,
            )
            for delivery in deliveries:
                if delivery.message.processed:
                    continue
                # On a live channel the message comes back redelivered and its crash count
                # bounds how often; on a dead one the broker returns it anyway.
                with contextlib.suppress(Exception):
                    await delivery.message.nack(requeue=True)
            for delivery in deliveries:
                if delivery.message.processed:
                    self._unacked.pop(id(delivery.message), None)
        finally:
            self._let_go([d.message for d in deliveries])
            self.runtime.settled_some(len(deliveries))

    def _announce_started_later(self, batch: Sequence[Delivery]) -> asyncio.Task[None] | None:
        """Announce STARTED only for tasks still running after ``started_delay`` seconds.

        Most tasks finish sooner: their SUCCEEDED (which carries the duration) is then the only
        lifecycle message, which saves a persistent, confirmed publish and a registry write per
        task. A long task still shows STARTED while it runs.
        """
        if not self.sub.announce:
            return None
        tasks = [d for d in batch if d.task_id is not None]
        if not tasks:
            return None

        async def later() -> None:
            await asyncio.sleep(self.runtime.started_delay)
            await asyncio.gather(
                *(
                    self._settler.announce(self.sub, d, TaskStatus.STARTED, quiet=True)
                    for d in tasks
                )
            )

        return asyncio.ensure_future(later())

    def _let_go(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        n = 0
        for message in messages:
            if id(message) in self._held:
                self._held.discard(id(message))
                n += 1
        if n:
            IN_FLIGHT.labels(self.runtime.service).dec(n)


async def _finish(task: asyncio.Task[None] | None) -> None:
    """Stop a pending STARTED announcement (the outcome is known now) or let it finish."""
    if task is not None:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _drop(task: asyncio.Task[None] | None) -> None:
    """Cancelled past the grace period: the task's STARTED must not go out after the broker
    connection is closed (the delivery returns to its queue unsettled)."""
    if task is not None:
        task.cancel()


def covering_ack(
    messages: Sequence[AbstractIncomingMessage], unacked: Iterable[AbstractIncomingMessage]
) -> AbstractIncomingMessage | None:
    """The delivery of ``messages`` whose ``multiple`` ack settles all of them and nothing else.

    A multiple ack settles every delivery of its channel up to its tag: only when no other
    delivery still unacked there (another batch in flight, a redelivery waiting to run alone, one
    given back) has a lower tag. None: ack one by one.
    """
    if len(messages) < 2:
        return None
    last = max(messages, key=_tag)
    if any(m.channel is not last.channel for m in messages):
        return None  # a channel reopened in between: tags of two channels
    mine = {id(m) for m in messages}
    for other in unacked:
        if id(other) not in mine and other.channel is last.channel and _tag(other) <= _tag(last):
            return None
    return last


def _tag(message: AbstractIncomingMessage) -> int:
    return message.delivery_tag or 0


def _ran_over(exc: Exception, batch: Sequence[Delivery]) -> Delivery | None:
    """The delivery of ``batch`` whose handler ran past its time limit, if that was ``exc``."""
    if isinstance(exc, TimeLimitExceeded):
        for delivery in batch:
            if delivery is exc.delivery:
                return delivery
    return None


def _report_crash(task: asyncio.Task[None]) -> None:
    # Without its loop a subscription consumes nothing more; this must never pass silently.
    with contextlib.suppress(asyncio.CancelledError):
        if (exc := task.exception()) is not None:
            log.critical("a consumer loop stopped", exc_info=exc)
