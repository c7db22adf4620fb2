"""A committed batch is acked with one ``multiple`` ack, and only when that settles nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.message import IncomingMessage

from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.runtime import covering_ack
from prs_shared.messaging.topology import Topology
from prs_shared.testing.fixtures import BrokerProbe, eventually
from prs_shared.testing.probe import EFFECT, Effect


@dataclass(eq=False)
class Delivered:
    """What the decision reads of a delivery: its channel and its tag."""

    channel: object
    delivery_tag: int


def deliveries(channel: object, *tags: int) -> list[AbstractIncomingMessage]:
    return [cast(AbstractIncomingMessage, Delivered(channel, tag)) for tag in tags]


def decide(
    batch: Sequence[AbstractIncomingMessage], others: Sequence[AbstractIncomingMessage] = ()
) -> int | None:
    last = covering_ack(batch, [*batch, *others])
    return None if last is None else last.delivery_tag


CHANNEL, REOPENED = object(), object()


def test_a_batch_with_nothing_unacked_below_it_is_acked_by_its_last_tag() -> None:
    assert decide(deliveries(CHANNEL, 3, 5, 4)) == 5


def test_a_delivery_of_another_batch_below_the_last_tag_means_one_ack_each() -> None:
    assert decide(deliveries(CHANNEL, 3, 5), deliveries(CHANNEL, 4)) is None
    assert decide(deliveries(CHANNEL, 3, 5), deliveries(CHANNEL, 1)) is None


def test_deliveries_above_the_batch_or_on_another_channel_do_not_stop_it() -> None:
    assert decide(deliveries(CHANNEL, 3, 5), deliveries(CHANNEL, 6, 7)) == 5
    assert decide(deliveries(CHANNEL, 3, 5), deliveries(REOPENED, 1)) == 5


def test_a_lone_delivery_or_a_batch_across_two_channels_is_acked_one_by_one() -> None:
    assert decide(deliveries(CHANNEL, 3)) is None
    assert decide([*deliveries(CHANNEL, 3), *deliveries(REOPENED, 4)]) is None


@pytest.mark.asyncio
async def test_a_batch_is_settled_by_one_ack_frame_and_nothing_comes_back(
    probe_host,
    publisher: Publisher,
    broker: BrokerProbe,
    topology: Topology,
    monkeypatch: pytest.MonkeyPatch,
    count_effects: Any,
) -> None:
    acks: list[bool] = []
    ack = IncomingMessage.ack

    async def recorded(self: IncomingMessage, multiple: bool = False) -> None:
        acks.append(multiple)
        await ack(self, multiple=multiple)

    monkeypatch.setattr(IncomingMessage, "ack", recorded)
    batch = [
        Envelope(
            type=EFFECT.type,
            payload=Effect(key=f"acked-{i}").model_dump(),
            task_id=uuid.uuid4(),
        )
        for i in range(6)
    ]
    async with probe_host(batch_size=16, batch_wait=0.5) as host:
        await publisher.publish_many(batch)

        async def settled() -> bool:
            return host.runtime.committed == 1 and host.runtime.settled == len(batch)

        await eventually(settled, message="the batch committed and settled")
    # Stopped: anything left unacked would be back on the queue now.
    assert (await broker.queue(topology.queue("workflow"))).messages == 0
    assert acks == [True]
    for m in batch:
        assert await count_effects(m.payload["key"]) == 1
