"""Exchanges and queues as code, declared idempotently by every service at start-up.

Layout (names get the optional namespace prefix):

- ``prs.commands`` (direct): a command's routing key is its queue name (the seed's eight).
- ``prs.events`` (topic): an event's routing key is its type; each service binds its own
  ``<service>.events`` queue to the types it handles. Events no one subscribes to go to the
  alternate exchange ``prs.unrouted`` instead of coming back as unroutable.
- ``prs.delay.<ms>`` queues: a message waiting for its retry sits here (never unacked in a
  consumer) until its per-message expiration; it is then dead-lettered to ``prs.redeliver``, a
  headers exchange that routes it back to the queue named in its ``prs-retry-queue`` header.
- ``prs.dlx`` (direct) with one ``<queue>.dlq`` per queue; the runtime publishes there itself so the
  reason, attempt count and last error travel in headers. Work queues also name ``prs.dlx`` as
  their dead-letter exchange, to catch anything the broker itself rejects.

Queues are classic by default (with priorities); ``PRS_QUEUE_TYPE=quorum`` declares every queue
as a replicated quorum queue instead (docs/adr/0007-quorum-queues.md).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from prs_shared.messaging.catalog import COMMAND_QUEUES
from prs_shared.messaging.registry_feed import REGISTRY_SUBSCRIBER, REGISTRY_TYPES

MAX_PRIORITY = 4  # task priorities 1-3, and 4 for control commands
# Not "x-": RabbitMQ ignores binding arguments that start with "x-" when matching headers, so
# such a binding would match every message.
RETRY_QUEUE_HEADER = "prs-retry-queue"
# Delay tiers in milliseconds, doubling from 250 ms to about 68 minutes. A delay goes to the
# largest tier not above it; per-message expirations inside one tier differ by less than 2x.
DELAY_TIERS_MS: tuple[int, ...] = tuple(250 * 2**i for i in range(15))

QueueType = Literal["classic", "quorum"]
# Dead-lettering that the broker confirms internally; RabbitMQ applies it only to a quorum queue
# whose overflow is reject-publish (with drop-head it falls back to at-most-once).
AT_LEAST_ONCE: dict[str, Any] = {
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}


@dataclass(frozen=True)
class Topology:
    """Names of everything on the broker; one instance per namespace."""

    namespace: str = ""
    command_queues: tuple[str, ...] = field(default=COMMAND_QUEUES)
    queue_type: QueueType = "classic"
    # Quorum queues only: deliveries of one message (returned unsettled by a dying worker) after
    # which the broker dead-letters it. Above the runtime's crash limit, so that the runtime's
    # crash_loop dead letter, with its headers, comes first; this is the backstop.
    delivery_limit: int = 6

    def _n(self, name: str) -> str:
        return f"{self.namespace}{name}"

    @property
    def commands_exchange(self) -> str:
        return self._n("prs.commands")

    @property
    def events_exchange(self) -> str:
        return self._n("prs.events")

    @property
    def unrouted_exchange(self) -> str:
        return self._n("prs.unrouted")

    @property
    def unrouted_queue(self) -> str:
        return self._n("prs.unrouted")

    @property
    def parked_queue(self) -> str:
        """Messages no consumer could settle, even as dead letters (watched by an alert)."""
        return self._n("prs.parked")

    @property
    def redeliver_exchange(self) -> str:
        return self._n("prs.redeliver")

    @property
    def dead_letter_exchange(self) -> str:
        return self._n("prs.dlx")

    def queue(self, name: str) -> str:
        """The broker name of a command queue (``workflow`` → ``<ns>workflow``)."""
        return self._n(name)

    def events_queue(self, service: str) -> str:
        return self._n(f"{service}.events")

    def dlq(self, queue_name: str) -> str:
        """Dead-letter queue of an already namespaced queue name."""
        return f"{queue_name}.dlq"

    def delay_queue(self, tier_ms: int) -> str:
        return self._n(f"prs.delay.{tier_ms}ms")

    def delay_tier(self, delay_ms: int) -> int:
        index = bisect.bisect_right(DELAY_TIERS_MS, delay_ms) - 1
        return DELAY_TIERS_MS[max(index, 0)]

    def work_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        """Arguments of a work queue: priorities when classic, replication when quorum."""
        dead_letters = {
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": queue_name,
        }
        if self.queue_type == "classic":
            return {"x-queue-type": "classic", "x-max-priority": MAX_PRIORITY, **dead_letters}
        # RabbitMQ 3.10 quorum queues have no priorities: tasks are taken in arrival order.
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            **dead_letters,
            **AT_LEAST_ONCE,
        }

    def plain_queue_arguments(self) -> dict[str, Any]:
        """A queue nothing is dead-lettered from (DLQs, parked): none when classic."""
        return {} if self.queue_type == "classic" else {"x-queue-type": "quorum"}

    def delay_queue_arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {"x-dead-letter-exchange": self.redeliver_exchange}
        if self.queue_type == "quorum":
            # A retry waiting here must not be lost on its way back when it expires.
            arguments.update({"x-queue-type": "quorum", **AT_LEAST_ONCE})
        return arguments

    def all_queue_names(self, services: Iterable[str] = ()) -> list[str]:
        names = [self.queue(q) for q in self.command_queues]
        names += [self.events_queue(s) for s in services]
        names += [self.dlq(n) for n in list(names)]
        names += [self.delay_queue(t) for t in DELAY_TIERS_MS]
        names.append(self.unrouted_queue)
        names.append(self.parked_queue)
        return names

    def all_exchange_names(self) -> list[str]:
        return [
            self.commands_exchange,
            self.events_exchange,
            self.unrouted_exchange,
            self.redeliver_exchange,
            self.dead_letter_exchange,
        ]


async def declare_base(channel: AbstractChannel, topology: Topology) -> None:
    """Declare exchanges, the seed's queues, their DLQs and the delay queues (idempotent)."""
    t = topology
    durable = aio_pika.ExchangeType
    unrouted = await channel.declare_exchange(t.unrouted_exchange, durable.FANOUT, durable=True)
    await channel.declare_exchange(t.commands_exchange, durable.DIRECT, durable=True)
    await channel.declare_exchange(
        t.events_exchange,
        durable.TOPIC,
        durable=True,
        arguments={"alternate-exchange": t.unrouted_exchange},
    )
    await channel.declare_exchange(t.redeliver_exchange, durable.HEADERS, durable=True)
    await channel.declare_exchange(t.dead_letter_exchange, durable.DIRECT, durable=True)

    unrouted_q = await channel.declare_queue(
        t.unrouted_queue,
        durable=True,
        # Kept for inspection, bounded so that an unsubscribed event type cannot fill the disk.
        arguments={"x-max-length": 10_000, "x-overflow": "drop-head", **t.plain_queue_arguments()},
    )
    await unrouted_q.bind(unrouted)
    await channel.declare_queue(t.parked_queue, durable=True, arguments=t.plain_queue_arguments())

    for name in t.command_queues:
        await declare_work_queue(channel, t, t.queue(name), [name], exchange=t.commands_exchange)
    await declare_work_queue(
        channel,
        t,
        t.events_queue(REGISTRY_SUBSCRIBER),
        REGISTRY_TYPES,
        exchange=t.events_exchange,
    )

    for tier in DELAY_TIERS_MS:
        await channel.declare_queue(
            t.delay_queue(tier),
            durable=True,
            arguments=t.delay_queue_arguments(),
        )


async def declare_work_queue(
    channel: AbstractChannel,
    topology: Topology,
    queue_name: str,
    routing_keys: Iterable[str],
    *,
    exchange: str,
) -> AbstractQueue:
    """A durable work queue (classic with priorities, or quorum) with its DLQ and its way back
    from the delay queues."""
    t = topology
    dlx = await channel.get_exchange(t.dead_letter_exchange, ensure=False)
    dlq = await channel.declare_queue(
        t.dlq(queue_name), durable=True, arguments=t.plain_queue_arguments()
    )
    await dlq.bind(dlx, routing_key=queue_name)
    queue = await channel.declare_queue(
        queue_name, durable=True, arguments=t.work_queue_arguments(queue_name)
    )
    source: AbstractExchange = await channel.get_exchange(exchange, ensure=False)
    for key in routing_keys:
        await queue.bind(source, routing_key=key)
    redeliver = await channel.get_exchange(t.redeliver_exchange, ensure=False)
    await queue.bind(redeliver, arguments={"x-match": "all", RETRY_QUEUE_HEADER: queue_name})
    return queue


async def delete_all(channel: AbstractChannel, topology: Topology, services: Iterable[str]) -> None:
    """Remove a namespace's queues and exchanges (test clean-up)."""
    for name in topology.all_queue_names(services):
        await channel.queue_delete(name)
    for name in topology.all_exchange_names():
        await channel.exchange_delete(name)
