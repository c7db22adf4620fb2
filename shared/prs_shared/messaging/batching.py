"""Micro-batches: several deliveries handled in one database transaction.

With ``batch_size`` 1 (the default) the runtime handles every delivery in its own asyncio task and
its own transaction. For a handler that is quick database work, most of the cost is then the
transaction around it: BEGIN, the inbox SELECT, the inbox INSERT and COMMIT, each a round trip to
PostgreSQL or a thread hop to SQLite. With a larger ``batch_size`` the runtime hands every usable
delivery to a :class:`BatchLoop`, which repeats:

1. **Collect** the deliveries that are ready, up to ``batch_size``, waiting at most ``batch_wait``
   after the first one for more to arrive.
2. **Commit** them in ONE transaction: one SELECT of the inbox for all their message ids; each
   remaining handler run in turn, with its own :class:`HandlerContext`, all sharing the session;
   one executemany INSERT of the inbox rows and one of all staged outbox rows; COMMIT. A message
   already in the inbox, or seen earlier in the same batch, is a duplicate: its handler is skipped
   and the stored result reused (a cancellation marker still makes it CANCELLED).
3. **Conclude**: announce every message's outcome (concurrently, each publish confirmed) and ack
   it, while the loop goes on with the next batch.

If anything in step 2 fails (a handler raises, transiently or permanently; the commit fails, for
instance with the IntegrityError of a duplicate another worker committed first; the database
connection is lost), the whole transaction rolls back, and the messages of the batch go one after
another, in delivery order, through the per-message path, which decides retry, dead letter or
duplicate for each exactly as with ``batch_size`` 1. Failures are rare, so the batch is the common
case, and the guarantees per message stay the same: its effects, its inbox row and its outbox rows
commit together or not at all, a failed message's effects never commit, and it is acked only
after its commit.

Deliveries that cannot be handled at all (malformed, unknown type, schema mismatch) never enter a
batch: the runtime dead-letters them one by one on arrival.

The price: the handlers of a batch run one after another, and the transaction (on SQLite the
database's only write lock) stays open until the last one has returned. A slow handler delays the
whole batch, and a batch that rolls back runs the handlers that had succeeded once more (their
database work was rolled back; anything they did outside it happens twice, as on any
redelivery). So batch services whose handlers are quick database work; a service whose handlers
do slow external I/O (SMTP, HTTP calls) should keep ``batch_size`` 1. ``prefetch`` should be at
least twice ``batch_size``, so that the next batch arrives while one commits.

A task still running ``started_delay`` after its batch began is announced STARTED, as a task
handled on its own is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from pydantic import BaseModel
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from prs_shared.db.engine import SessionFactory
from prs_shared.db.tables import inbox
from prs_shared.logging import bind_context
from prs_shared.messaging.envelope import Envelope, utcnow
from prs_shared.messaging.handlers import Handler, HandlerContext
from prs_shared.messaging.outbox import add_to_outbox
from prs_shared.messaging.topology import Topology
from prs_shared.metrics import IN_FLIGHT

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Delivery:
    """A delivery fit to be handled: decoded, its handler known, its payload valid."""

    queue: str
    message: AbstractIncomingMessage
    envelope: Envelope
    handler: Handler
    payload: BaseModel
    attempt: int

    @property
    def message_id(self) -> str:
        return str(self.envelope.id)

    def bind_log_context(self) -> None:
        bind_context(
            correlation_id=self.envelope.correlation_id,
            task_id=self.envelope.task_id,
            message_type=self.envelope.type,
        )

    def context(self, session: AsyncSession, service: str, worker: str) -> HandlerContext:
        return HandlerContext(
            envelope=self.envelope,
            session=session,
            service=service,
            worker=worker,
            attempt=self.attempt,
            queue=self.queue,
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """A committed delivery: its result, or for a duplicate the result stored the first time."""

    duplicate: bool
    result: dict[str, Any] | None
    duration_ms: float


def inbox_row(
    envelope: Envelope, result: dict[str, Any] | None, duration_ms: float
) -> dict[str, Any]:
    return {
        "message_id": str(envelope.id),
        "message_type": envelope.type,
        "task_id": str(envelope.task_id) if envelope.task_id else None,
        "processed_at": utcnow(),
        "result": result,
        "duration_ms": duration_ms,
    }


class BatchLoop:
    """Handles the deliveries handed to it in batches; one per runtime with ``batch_size`` > 1.

    It owns a delivery from :meth:`put` until the delivery is acked (or left unacked after a
    failure) and counts it in :attr:`in_flight` meanwhile. The runtime raised the IN_FLIGHT gauge
    when the delivery arrived; the loop lowers it when it lets the delivery go.
    """

    def __init__(
        self,
        *,
        size: int,
        wait: float,
        sessions: SessionFactory,
        topology: Topology,
        service: str,
        worker: str,
        started_delay: float,
        handle_alone: Callable[[Delivery], Awaitable[None]],
        conclude: Callable[[Delivery, Outcome], Awaitable[None]],
        announce_started: Callable[[Delivery], Awaitable[None]],
        on_committed: Callable[[], None] | None,
    ) -> None:
        if size < 2:
            raise ValueError("a batch loop needs a batch size of at least 2")
        self._size = size
        self._wait = wait
        self._sessions = sessions
        self._topology = topology
        self._service = service
        self._worker = worker
        self._started_delay = started_delay
        self._handle_alone = handle_alone
        self._conclude = conclude
        self._announce_started = announce_started
        self._on_committed = on_committed
        self._ready: deque[Delivery] = deque()
        self._arrived = asyncio.Event()
        # Taken from ``_ready`` by the loop and not yet handed to a concluding or fallback task.
        self._held: list[Delivery] = []
        self._closing = False
        self._loop_task: asyncio.Task[None] | None = None
        # Concluding batches and messages handled on their own after a rollback.
        self._tasks: set[asyncio.Task[None]] = set()
        self.in_flight = 0
        self.committed = 0
        self.rolled_back = 0

    def start(self) -> None:
        self._loop_task = asyncio.ensure_future(self._run())
        self._loop_task.add_done_callback(_report_crash)

    def put(self, delivery: Delivery) -> bool:
        """Take over a usable delivery; False once the loop has stopped (it stays unacked)."""
        if self._loop_task is None or self._loop_task.done():
            return False
        self._ready.append(delivery)
        self.in_flight += 1
        self._arrived.set()
        return True

    async def drain(self) -> None:
        """Handle what has been delivered, then stop; the consumers are cancelled already."""
        self._closing = True
        self._arrived.set()
        if self._loop_task is not None:
            await asyncio.wait({self._loop_task})
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def cancel(self) -> set[asyncio.Task[None]]:
        """Abandon unfinished work (past the grace period); returns the tasks cancelled."""
        tasks = {t for t in (self._loop_task, *self._tasks) if t is not None and not t.done()}
        for task in tasks:
            task.cancel()
        return tasks

    # --- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while batch := await self._collect():
                await self._process(batch)
        finally:
            # Stopped, or cancelled past the grace period: these were never acked and return to
            # their queues when the channel closes.
            self._let_go(len(self._held) + len(self._ready))
            self._held = []
            self._ready.clear()

    async def _collect(self) -> list[Delivery]:
        """The next batch; empty once draining and nothing is left."""
        while not self._ready:
            if self._closing:
                return []
            self._arrived.clear()
            await self._arrived.wait()
        if len(self._ready) < self._size and self._wait > 0:
            # The broker streams up to ``prefetch`` deliveries; a moment's wait fills the batch.
            await asyncio.sleep(self._wait)
        take = min(self._size, len(self._ready))
        self._held = [self._ready.popleft() for _ in range(take)]
        return self._held

    async def _process(self, batch: list[Delivery]) -> None:
        started = self._announce_started_later(batch)
        outcomes: list[Outcome] | None = None
        try:
            outcomes = await self._commit(batch)
        except Exception as exc:
            log.info(
                "batch of %d rolled back (%s: %s); handling each message on its own",
                len(batch),
                type(exc).__name__,
                exc,
            )
        finally:
            await settle(started)
        if outcomes is None:
            self.rolled_back += 1
            self._spawn(self._one_by_one(batch))
        else:
            self.committed += 1
            self._spawn(self._conclude_all(batch, outcomes))
        # Handed over (no await since the spawns): the loop no longer answers for these.
        self._held = []

    async def _commit(self, batch: list[Delivery]) -> list[Outcome]:
        t0 = time.perf_counter()
        outcomes: list[Outcome] = []
        rows: list[dict[str, Any]] = []
        staged: list[tuple[Envelope, str | None]] = []
        async with self._sessions() as session, session.begin():
            found = await session.execute(
                select(inbox.c.message_id, inbox.c.result, inbox.c.duration_ms).where(
                    inbox.c.message_id.in_([d.message_id for d in batch])
                )
            )
            known = {
                row.message_id: Outcome(True, row.result, row.duration_ms or 0.0) for row in found
            }
            for delivery in batch:
                prior = known.get(delivery.message_id)
                if prior is not None:
                    outcomes.append(prior)
                    continue
                delivery.bind_log_context()
                ctx = delivery.context(session, self._service, self._worker)
                result = await delivery.handler(delivery.payload, ctx)
                # From the batch's start: the handlers ahead of this one are part of its wait, as
                # a lone message's wait for a connection and the write lock is part of its own.
                duration_ms = (time.perf_counter() - t0) * 1000
                outcome = Outcome(False, result, duration_ms)
                outcomes.append(outcome)
                # A second copy of the same message later in this batch is its duplicate.
                known[delivery.message_id] = replace(outcome, duplicate=True)
                rows.append(inbox_row(delivery.envelope, result, duration_ms))
                staged.extend(ctx.staged)
            if rows:
                await session.execute(insert(inbox), rows)
            await add_to_outbox(session, staged, self._topology)
        if staged and self._on_committed is not None:
            self._on_committed()
        return outcomes

    # --- after the transaction ----------------------------------------------------------------

    async def _conclude_all(self, batch: list[Delivery], outcomes: list[Outcome]) -> None:
        await asyncio.gather(
            *(self._conclude_one(d, o) for d, o in zip(batch, outcomes, strict=True))
        )

    async def _conclude_one(self, delivery: Delivery, outcome: Outcome) -> None:
        try:
            await self._conclude(delivery, outcome)
        except Exception:
            # The broker went away while announcing or acking: the delivery comes back and the
            # inbox absorbs it.
            log.warning("delivery on %s left unacked", delivery.queue, exc_info=True)
        finally:
            self._let_go(1)

    async def _one_by_one(self, batch: list[Delivery]) -> None:
        # In delivery order, one transaction each: what made the batch fail (a conflict between
        # two of its messages, say) resolves the same way every time.
        for n, delivery in enumerate(batch):
            delivery.bind_log_context()
            try:
                await self._handle_alone(delivery)
            except Exception:
                log.warning("delivery on %s left unacked", delivery.queue, exc_info=True)
            except asyncio.CancelledError:
                # Past the grace period: the rest stay unacked and return to their queues.
                self._let_go(len(batch) - n)
                raise
            self._let_go(1)

    def _announce_started_later(self, batch: list[Delivery]) -> asyncio.Task[None] | None:
        """One timer for the whole batch: its tasks are all running until it commits."""
        tasks = [d for d in batch if d.envelope.task_id is not None]
        if not tasks:
            return None

        async def later() -> None:
            await asyncio.sleep(self._started_delay)
            await asyncio.gather(*(self._announce_started(d) for d in tasks))

        return asyncio.ensure_future(later())

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _let_go(self, n: int) -> None:
        if n:
            self.in_flight -= n
            IN_FLIGHT.labels(self._service).dec(n)


async def settle(task: asyncio.Task[None] | None) -> None:
    """Stop a pending STARTED announcement (the outcome is known now) or let it finish."""
    if task is not None:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _report_crash(task: asyncio.Task[None]) -> None:
    # Without its loop a batching runtime consumes nothing more; this must never pass silently.
    with contextlib.suppress(asyncio.CancelledError):
        if (exc := task.exception()) is not None:
            log.critical("the batch loop stopped", exc_info=exc)
