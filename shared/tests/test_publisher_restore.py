"""A publish made while a robust channel is being reopened after a lost connection waits for it.

After a reconnect aio-pika reopens a connection's channels one after another, in no fixed order,
so a consumer's channel can deliver again while the publisher's is still closed. A handler that
committed in that window must still be able to announce its outcome.
"""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest

from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.topology import Topology, declare_base
from prs_shared.testing.fixtures import close_connections, eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

ROUTING_KEY = "probe.restore"


async def test_a_publish_while_the_channel_is_closed_waits_for_its_restore_and_is_delivered(
    amqp_url: str, topology: Topology
) -> None:
    name = f"publisher-restore-{uuid.uuid4().hex[:10]}"
    connection = await aio_pika.connect_robust(
        amqp_url, client_properties={"connection_name": name}, reconnect_interval=1.0
    )
    observer = await aio_pika.connect(amqp_url)
    try:
        setup = await observer.channel()
        await declare_base(setup, topology)
        received = await setup.declare_queue(exclusive=True)
        await received.bind(topology.events_exchange, ROUTING_KEY)

        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        publisher = Publisher(channel, topology, timeout=20)
        published: list[asyncio.Task[None]] = []

        def publish_while_closed(*_: object) -> None:
            # Runs as the channel learns that its connection is gone, before any reconnect.
            assert channel.is_closed
            message = aio_pika.Message(b"{}", message_id="while-closed")
            published.append(
                asyncio.ensure_future(
                    publisher.publish_raw(topology.events_exchange, ROUTING_KEY, message)
                )
            )

        channel.close_callbacks.add(publish_while_closed)
        assert await asyncio.to_thread(close_connections, name) == 1
        await eventually(lambda: _true(bool(published)), timeout=10, message="channel closed")
        await asyncio.wait_for(published[0], timeout=30)
        assert not channel.is_closed

        async def arrived() -> aio_pika.abc.AbstractIncomingMessage | None:
            return await received.get(fail=False, no_ack=True)

        message = await eventually(arrived, timeout=10, message="the message reached the queue")
        assert message.message_id == "while-closed"
    finally:
        await connection.close()
        await observer.close()


async def _true(value: bool) -> bool:
    return value
