"""The base topology every service declares."""

from __future__ import annotations

import pytest

from prs_shared.messaging.envelope import Envelope, utcnow
from prs_shared.messaging.messages import HEARTBEAT, Heartbeat
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.registry_feed import REGISTRY_SUBSCRIBER
from prs_shared.messaging.topology import Topology
from prs_shared.testing.fixtures import BrokerProbe

pytestmark = pytest.mark.asyncio


async def test_a_heartbeat_sent_before_the_gateway_ever_started_waits_in_the_registry_queue(
    publisher: Publisher, broker: BrokerProbe, topology: Topology
) -> None:
    # Only the base topology exists (as after any service's start); no gateway has run.
    beat = Heartbeat(
        service="notifier",
        worker="host:1",
        started_at=utcnow(),
        queues=[],
        in_flight=0,
        processed=0,
    )
    await publisher.publish(Envelope(type=HEARTBEAT.type, payload=beat.model_dump(mode="json")))
    waiting = await broker.get_all(topology.events_queue(REGISTRY_SUBSCRIBER))
    assert [m.type for m in waiting] == [HEARTBEAT.type]
    assert (await broker.queue(topology.unrouted_queue)).messages == 0
