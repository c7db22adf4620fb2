"""A subscription: one queue, what is done with its deliveries, and how they are batched.

Every consumer in the platform is a subscription of the one runtime: a service's command queues
and its events queue (handlers looked up by type), the gateway's registry (one fold over a batch
of lifecycle events) and the dead-letter archive (raw messages). They differ only in the fields
below; decoding, the unit of work and settling are the same code for all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aio_pika.abc import AbstractChannel, AbstractQueue
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from prs_shared.messaging.delivery import Delivery
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.handlers import (
    BatchHandlerRegistry,
    HandlerContext,
    HandlerRegistry,
    Result,
)
from prs_shared.messaging.headers import ATTEMPT_HEADER, ERROR_HEADER
from prs_shared.messaging.time_limits import TimeLimits, within_hard_limit

__all__ = ["Result", "RetryHeaders", "Scope", "Subscription", "Work", "dispatch", "fold"]


@dataclass
class Scope:
    """One transaction of a unit of work: what a batch's work may use besides its deliveries."""

    session: AsyncSession
    service: str
    worker: str
    staged: list[tuple[Envelope, str | None]] = field(default_factory=list)


Work = Callable[[Sequence[Delivery], Scope], Awaitable[Sequence[Result]]]
"""Handles a batch inside its transaction; returns one result per delivery, in order."""

Declare = Callable[[AbstractChannel], Awaitable[AbstractQueue]]


@dataclass(frozen=True)
class RetryHeaders:
    """Where a retried copy keeps its attempt count and last error.

    The dead-letter archive retries dead letters, which carry the failed task's own
    ``x-last-error``: its retries must not overwrite it.
    """

    attempt: str = ATTEMPT_HEADER
    error: str = ERROR_HEADER


@dataclass(frozen=True)
class Subscription:
    queue: str
    """The broker name of the queue."""
    declare: Declare
    """Declares the queue (and its bindings, DLQ and way back from the delay queues)."""
    work: Work
    accepts: frozenset[str] | None
    """Message types handled (anything else is dead-lettered); None for raw deliveries."""
    batch_size: int = 1
    batch_wait: float = 0.0
    """Longest a batch waits for more deliveries once one is ready (only if batch_size > 1); the
    wait ends early at a tenth of it without a new delivery, so a lone message is not held."""
    concurrency: int = 1
    """Batches handled at once; with batch_size 1, deliveries handled at once."""
    inbox: bool = True
    """Record message ids and skip the ones seen; off for folds that are idempotent anyway."""
    announce: bool = True
    """Publish task lifecycle events for commands that carry a task id."""
    dead_letter_to: tuple[str, str] | None = None
    """(exchange, routing key) for final failures; None: the queue's own ``<queue>.dlq``."""
    retry_headers: RetryHeaders = RetryHeaders()
    prefetch: int | None = None
    """Unacked deliveries on this subscription's channel; None: the service's setting."""

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.concurrency < 1:
            raise ValueError("batch_size and concurrency must be at least 1")


def dispatch(handlers: HandlerRegistry, limits: TimeLimits | None = None) -> Work:
    """Work that runs each delivery's handler, looked up by type, one after another.

    Each handler runs within its type's time limits, counted from its own start: in a batch
    the limit is per message, not per batch.
    """
    limits = limits or TimeLimits()

    async def work(deliveries: Sequence[Delivery], scope: Scope) -> list[Result]:
        results: list[Result] = []
        loop = asyncio.get_running_loop()
        for delivery in deliveries:
            envelope, payload = delivery.envelope, delivery.payload
            assert envelope is not None  # envelope subscriptions only
            assert payload is not None
            handler = handlers.get(envelope.type)
            assert handler is not None  # decoding refused types without a handler
            delivery.bind_log_context()
            limit = limits.for_type(envelope.type)
            ctx = HandlerContext(
                envelope=envelope,
                session=scope.session,
                service=scope.service,
                worker=scope.worker,
                attempt=delivery.attempt,
                queue=delivery.queue,
                staged=scope.staged,
                time_limit=limit,
                deadline=loop.time() + limit.soft if limit.soft else None,
            )
            results.append(await within_hard_limit(limit, handler(payload, ctx), delivery))
        return results

    return work


def fold(handlers: BatchHandlerRegistry) -> Work:
    """Work that hands the whole batch to its batch handlers, each called once."""

    async def work(deliveries: Sequence[Delivery], scope: Scope) -> list[Result]:
        messages: list[tuple[Envelope, BaseModel]] = []
        for delivery in deliveries:
            assert delivery.envelope is not None  # envelope subscriptions only
            assert delivery.payload is not None
            messages.append((delivery.envelope, delivery.payload))
        await handlers.run(messages, scope.session)
        return [None] * len(deliveries)

    return work
