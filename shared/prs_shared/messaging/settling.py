"""Settling a delivery: ack, retry, dead-letter, and telling the registry what happened.

This is the only place that copies a message (to a delay queue for a retry, to a dead-letter
queue for a final failure); every copy keeps the original body, ids, priority and headers, and
adds the runtime's own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import uuid4

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from prs_shared.db.outage import database_unavailable
from prs_shared.messaging import catalog
from prs_shared.messaging.backoff import retry_delay
from prs_shared.messaging.delivery import Delivery
from prs_shared.messaging.envelope import Envelope, utcnow
from prs_shared.messaging.errors import PermanentError
from prs_shared.messaging.headers import (
    ATTEMPTS_HEADER,
    ERROR_HEADER,
    ORIGINAL_QUEUE_HEADER,
    OUTAGE_RETRIES_HEADER,
    OUTAGE_SINCE_HEADER,
    REASON_HEADER,
    epoch_header,
    error_text,
    int_header,
)
from prs_shared.messaging.inbox import is_cancel_marker
from prs_shared.messaging.messages import (
    LIFECYCLE_STATUS_TYPES,
    TASK_OUTCOMES,
    TaskLifecycle,
    TaskOutcome,
    TaskOutcomes,
    TaskStatus,
)
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.subscription import Subscription
from prs_shared.messaging.time_limits import TimeLimitExceeded
from prs_shared.messaging.topology import RETRY_QUEUE_HEADER
from prs_shared.messaging.unit_of_work import Outcome
from prs_shared.metrics import DEAD_LETTERS, DUPLICATES, RETRIES, TASK_DURATION, TASKS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 300.0
    crash_limit: int = 5
    """A message redelivered more often than this (its worker died each time) is dead-lettered."""
    outage_limit: float = 600.0
    """Seconds a message waits out its service's database being unreachable (retried without
    spending its retries) before it is dead-lettered with reason database_unavailable."""

    def limit_for(self, type_: str | None) -> int:
        if type_ is None:
            return self.max_retries
        try:
            spec = catalog.lookup(type_)
        except catalog.UnknownMessageType:
            return self.max_retries
        return self.max_retries if spec.max_retries is None else spec.max_retries


OUTAGE_MAX_DELAY = 30.0
"""Longest wait between two tries of a message whose database is away: it is back soon after."""


def copy_message(
    message: AbstractIncomingMessage,
    headers: Mapping[str, Any],
    *,
    expiration: timedelta | None = None,
    drop: Sequence[str] = (),
) -> aio_pika.Message:
    """A persistent copy of ``message`` with ``headers`` added and ``drop`` removed (the
    broker's x-death always dropped)."""
    merged = dict(message.headers or {})
    for name in ("x-death", *drop):
        merged.pop(name, None)
    merged.update(headers)
    return aio_pika.Message(
        body=message.body,
        headers=merged,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        type=message.type,
        priority=message.priority,
        expiration=expiration,
    )


class Settler:
    """Decides and carries out what becomes of a delivery once its outcome is known."""

    def __init__(
        self, *, publisher: Publisher, service: str, worker: str, retry: RetryPolicy
    ) -> None:
        self._publisher = publisher
        self._topology = publisher.topology
        self.service = service
        self.worker = worker
        self.retry = retry
        self.processed = 0

    # --- success ------------------------------------------------------------------------------

    async def conclude(
        self,
        sub: Subscription,
        batch: Sequence[Delivery],
        outcomes: Sequence[Outcome],
        ack: Acker,
    ) -> None:
        """After the commit: announce the outcomes, then ``ack`` the batch (the consumer knows
        when one ``multiple`` ack can settle all of it)."""
        announced = [
            (d, envelope, o)
            for d, o in zip(batch, outcomes, strict=True)
            if (envelope := _announced(sub, d)) is not None
        ]
        if len(announced) > 1 and (batched := self._outcomes_of(announced)) is not None:
            # One persistent, confirmed message for the batch, folded by the registry in one
            # transaction, instead of one per task.
            await self._publisher.publish(batched)
        else:
            await asyncio.gather(*(self._announce_outcome(sub, d, o) for d, _, o in announced))
        await ack([d.message for d in batch])
        for delivery, outcome in zip(batch, outcomes, strict=True):
            self._count(delivery, outcome)

    def _outcomes_of(
        self, announced: Sequence[tuple[Delivery, Envelope, Outcome]]
    ) -> Envelope | None:
        """The batch's ``task.outcomes`` message; None when it would be too large for one."""
        at = utcnow()
        outcomes = []
        for delivery, envelope, outcome in announced:
            cancelled = _cancelled(outcome)
            outcomes.append(
                _lifecycle(
                    TaskOutcome,
                    event_id=uuid4(),
                    correlation_id=envelope.correlation_id,
                    causation_id=envelope.id,
                    organization_id=envelope.organization_id,
                    **self._lifecycle_fields(
                        delivery,
                        envelope,
                        TaskStatus.CANCELLED if cancelled else TaskStatus.SUCCEEDED,
                        at=at,
                        result=None if cancelled else outcome.result,
                        duration_ms=None if cancelled else outcome.duration_ms,
                    ),
                )
            )
        try:
            return Envelope(
                type=TASK_OUTCOMES.type,
                payload=TaskOutcomes(outcomes=outcomes).model_dump(mode="json"),
            )
        except ValidationError:
            return None  # over the payload limit: each task's own event carries its result

    async def _announce_outcome(self, sub: Subscription, d: Delivery, outcome: Outcome) -> None:
        if _cancelled(outcome):
            await self.announce(sub, d, TaskStatus.CANCELLED)
        else:
            await self.announce(
                sub,
                d,
                TaskStatus.SUCCEEDED,
                result=outcome.result,
                duration_ms=outcome.duration_ms,
            )

    def _count(self, delivery: Delivery, outcome: Outcome) -> None:
        type_ = delivery.type
        if _cancelled(outcome):
            TASKS.labels(self.service, type_, "cancelled").inc()
            return
        self.processed += 1
        TASKS.labels(self.service, type_, "duplicate" if outcome.duplicate else "succeeded").inc()
        if outcome.duplicate:
            DUPLICATES.labels(self.service, type_).inc()
        else:
            TASK_DURATION.labels(self.service, type_).observe(outcome.duration_ms / 1000)

    # --- failure ------------------------------------------------------------------------------

    async def fail(self, sub: Subscription, delivery: Delivery, exc: Exception) -> None:
        """A delivery whose unit of work raised on its own: dead letter or retry."""
        if isinstance(exc, PermanentError):
            await self.dead_letter(sub, delivery, "permanent_error", exc, TaskStatus.FAILED)
            return
        if database_unavailable(exc):
            await self._wait_out_outage(sub, delivery, exc)
            return
        limit = self.retry.limit_for(delivery.envelope.type if delivery.envelope else None)
        if delivery.attempt > limit:
            if isinstance(exc, TimeLimitExceeded):
                # Its own reason: an operator raises the limit, or makes the task smaller.
                await self.dead_letter(sub, delivery, exc.reason, exc, TaskStatus.FAILED)
                return
            await self.dead_letter(sub, delivery, "retries_exhausted", exc)
            return
        await self._retry(sub, delivery, exc)

    async def _retry(self, sub: Subscription, delivery: Delivery, exc: Exception) -> None:
        attempt = delivery.attempt
        delay = retry_delay(attempt, base=self.retry.base_delay, cap=self.retry.max_delay)
        # A later outage is waited out afresh: what an earlier one left is dropped.
        await self._send_back(
            sub,
            delivery,
            exc,
            delay,
            {sub.retry_headers.attempt: attempt + 1},
            drop=(OUTAGE_SINCE_HEADER, OUTAGE_RETRIES_HEADER),
        )
        log.warning(
            "attempt %d of %s failed, retrying in %.2fs: %s",
            attempt,
            delivery.type,
            delay,
            error_text(exc),
            exc_info=not isinstance(exc, TimeoutError | ConnectionError),
        )
        RETRIES.labels(self.service, delivery.type).inc()
        TASKS.labels(self.service, delivery.type, "retried").inc()

    async def _wait_out_outage(self, sub: Subscription, delivery: Delivery, exc: Exception) -> None:
        """The service's database is away: the message is tried again later without spending
        one of its retries (the task is not at fault), for ``outage_limit`` seconds at most."""
        headers = delivery.message.headers or {}
        now = time.time()
        since = min(epoch_header(headers, OUTAGE_SINCE_HEADER) or now, now)
        if now - since > self.retry.outage_limit:
            await self.dead_letter(sub, delivery, "database_unavailable", exc)
            return
        waited = (
            int_header(headers, OUTAGE_RETRIES_HEADER, 0) if OUTAGE_RETRIES_HEADER in headers else 0
        )
        delay = retry_delay(
            waited + 1, base=self.retry.base_delay, cap=min(self.retry.max_delay, OUTAGE_MAX_DELAY)
        )
        await self._send_back(
            sub,
            delivery,
            exc,
            delay,
            {OUTAGE_SINCE_HEADER: int(since), OUTAGE_RETRIES_HEADER: waited + 1},
        )
        log.warning(
            "%s: the database is unavailable (for %.0fs so far); trying again in %.2fs without "
            "spending a retry: %s",
            delivery.type,
            now - since,
            delay,
            error_text(exc),
        )
        TASKS.labels(self.service, delivery.type, "waited_out_outage").inc()

    async def _send_back(
        self,
        sub: Subscription,
        delivery: Delivery,
        exc: Exception,
        delay: float,
        headers: Mapping[str, Any],
        *,
        drop: Sequence[str] = (),
    ) -> None:
        """Through a delay queue back to its own queue in ``delay`` seconds; then ack it."""
        delay_ms = max(1, int(delay * 1000))
        copy = copy_message(
            delivery.message,
            {
                **headers,
                sub.retry_headers.error: error_text(exc),
                RETRY_QUEUE_HEADER: delivery.queue,
            },
            expiration=timedelta(milliseconds=delay_ms),
            drop=drop,
        )
        tier = self._topology.delay_tier(delay_ms)
        await self._publisher.publish_raw("", self._topology.delay_queue(tier), copy)
        await self.announce(
            sub,
            delivery,
            TaskStatus.RETRYING,
            error=error_text(exc),
            retry_at=utcnow() + timedelta(milliseconds=delay_ms),
            quiet=True,
        )
        await delivery.message.ack()

    async def dead_letter(
        self,
        sub: Subscription,
        delivery: Delivery,
        reason: str,
        exc: BaseException,
        status: TaskStatus = TaskStatus.DEAD_LETTERED,
    ) -> None:
        """Copy the message to its dead-letter queue with why it failed, confirm, then ack it."""
        message = delivery.message
        error = error_text(exc)
        copy = copy_message(
            message,
            {
                REASON_HEADER: reason,
                ATTEMPTS_HEADER: delivery.attempt,
                ERROR_HEADER: error,
                ORIGINAL_QUEUE_HEADER: delivery.queue,
                "x-dead-lettered-at": utcnow().isoformat(),
                "x-dead-lettered-by": self.worker,
            },
            # An outage it waited out is over for this copy: a replay waits out its own.
            drop=(OUTAGE_SINCE_HEADER, OUTAGE_RETRIES_HEADER),
        )
        exchange, routing_key = sub.dead_letter_to or (
            self._topology.dead_letter_exchange,
            delivery.queue,
        )
        await self._publisher.publish_raw(exchange, routing_key, copy)
        log.error("dead-lettered from %s (%s): %s", delivery.queue, reason, error)
        announced = error if error.startswith(f"{reason}: ") else f"{reason}: {error}"
        await self.announce(sub, delivery, status, error=announced)
        await message.ack()
        DEAD_LETTERS.labels(self.service, delivery.queue, reason).inc()
        TASKS.labels(self.service, delivery.type, status.value.lower()).inc()

    # --- lifecycle events ---------------------------------------------------------------------

    async def announce(
        self,
        sub: Subscription,
        delivery: Delivery,
        status: TaskStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        duration_ms: float | None = None,
        retry_at: datetime | None = None,
        quiet: bool = False,
    ) -> None:
        """Publish a task lifecycle event for a command that carries a task id."""
        envelope = _announced(sub, delivery)
        if envelope is None:
            return
        lifecycle = _lifecycle(
            TaskLifecycle,
            **self._lifecycle_fields(
                delivery,
                envelope,
                status,
                at=utcnow(),
                duration_ms=duration_ms,
                result=result,
                error=error,
                retry_at=retry_at,
            ),
        )
        event = envelope.caused(LIFECYCLE_STATUS_TYPES[status], lifecycle, task_id=envelope.task_id)
        try:
            await self._publisher.publish(event)
        except Exception:
            if not quiet:
                raise
            log.warning("could not announce %s", status.value, exc_info=True)

    def _lifecycle_fields(
        self, delivery: Delivery, envelope: Envelope, status: TaskStatus, **fields: Any
    ) -> dict[str, Any]:
        return {
            "task_id": envelope.task_id,
            "task_type": envelope.type,
            "status": status,
            "queue": delivery.queue,
            "service": self.service,
            "worker": self.worker,
            "attempt": delivery.attempt,
            "queued_at": envelope.occurred_at,
            "priority": envelope.priority,
            **fields,
        }


def _cancelled(outcome: Outcome) -> bool:
    """The command was cancelled before it ran: its inbox row is the cancellation's marker."""
    return outcome.duplicate and is_cancel_marker(outcome.result)


def _announced(sub: Subscription, delivery: Delivery) -> Envelope | None:
    """The delivery's envelope when its lifecycle is announced: a task on an announcing queue."""
    envelope = delivery.envelope
    if not sub.announce or envelope is None or envelope.task_id is None:
        return None
    return envelope


L = TypeVar("L", bound=TaskLifecycle)

Acker = Callable[[Sequence[AbstractIncomingMessage]], Awaitable[None]]
"""Acks a committed batch's messages."""


def _lifecycle(cls: type[L], **fields: Any) -> L:
    """The lifecycle event; a result too large for it is replaced by a note of its size.

    The handler's work is committed by now: refusing to announce it would leave the delivery
    unsettled and bring it back again and again.
    """
    try:
        return cls(**fields)
    except ValidationError:
        if fields.get("result") is None:
            raise
        size = len(json.dumps(fields["result"], default=str))
        log.warning("result of task %s is %d bytes; announced without it", fields["task_id"], size)
        fields["result"] = {"result_omitted": "too large to announce", "bytes": size}
        return cls(**fields)
