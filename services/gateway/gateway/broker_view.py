"""What the broker says about the platform's queues (depth and consumers).

Uses passive declarations on a dedicated channel: no management plugin needed. A passive
declaration of a missing queue closes the channel, so each miss gets a fresh one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.exceptions import ChannelNotFoundEntity

from prs_shared.messaging.registry_feed import REGISTRY_SUBSCRIBER
from prs_shared.messaging.topology import Topology

SERVICES = ("gateway", "deal-workflow", "file-processor", "notifier", "scheduler")
# The registry folds lifecycle events from its own queue, apart from the gateway's runtime.
REGISTRY_CONSUMER = REGISTRY_SUBSCRIBER
# Every service subscribes to events (at least the scheduler's housekeeping ticks) through its
# own ``<service>.events`` queue; the registry has one of its own.
EVENT_SUBSCRIBERS = (*SERVICES, REGISTRY_CONSUMER)


@dataclass(frozen=True)
class QueueStat:
    name: str
    messages: int | None
    consumers: int | None


def queue_names(topology: Topology) -> list[str]:
    names = [topology.queue(q) for q in topology.command_queues]
    names += [topology.events_queue(s) for s in EVENT_SUBSCRIBERS]
    return names


async def queue_stats(connection: AbstractConnection, topology: Topology) -> list[QueueStat]:
    channel: AbstractChannel = await connection.channel()
    stats: list[QueueStat] = []
    try:
        for name in queue_names(topology):
            main, channel = await _peek(connection, channel, name)
            # No peek at <queue>.dlq: the archive drains it at once (dead_letter_counts counts).
            stats.append(
                QueueStat(
                    name=name,
                    messages=main[0] if main else None,
                    consumers=main[1] if main else None,
                )
            )
    finally:
        if not channel.is_closed:
            await channel.close()
    return stats


async def _peek(
    connection: AbstractConnection, channel: AbstractChannel, name: str
) -> tuple[tuple[int, int] | None, AbstractChannel]:
    try:
        queue = await asyncio.wait_for(channel.declare_queue(name, passive=True), 5)
    except ChannelNotFoundEntity:
        return None, await connection.channel()
    result: Any = queue.declaration_result
    return (int(result.message_count), int(result.consumer_count)), channel
