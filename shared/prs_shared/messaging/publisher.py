"""Publishing with publisher confirms and ``mandatory``: unroutable or unconfirmed is an error."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractRobustChannel,
    DeliveryMode,
    HeadersType,
)
from aiormq.exceptions import DeliveryError

from prs_shared.messaging import catalog
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.topology import Topology


class PublishError(RuntimeError):
    """The broker did not take responsibility for a message (returned, nacked or timed out)."""


@dataclass(frozen=True)
class Route:
    exchange: str
    routing_key: str


def route_for(envelope: Envelope, topology: Topology, queue: str | None = None) -> Route:
    """Commands go to their queue (the catalog's unless ``queue`` is given); events by type."""
    spec = catalog.lookup(envelope.type)
    if spec.kind == "command":
        target = queue or spec.queue
        assert target is not None
        return Route(topology.commands_exchange, target)
    if queue is not None:
        raise ValueError(f"{envelope.type} is an event; events are routed by type, not queue")
    return Route(topology.events_exchange, envelope.type)


def amqp_priority(envelope: Envelope) -> int:
    spec = catalog.lookup(envelope.type)
    return spec.amqp_priority if spec.amqp_priority is not None else envelope.priority.amqp


def to_amqp(envelope: Envelope, headers: HeadersType | None = None) -> aio_pika.Message:
    return aio_pika.Message(
        body=envelope.model_dump_json().encode(),
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=str(envelope.id),
        correlation_id=str(envelope.correlation_id),
        type=envelope.type,
        priority=amqp_priority(envelope),
        timestamp=envelope.occurred_at,
        headers=dict(headers or {}),
    )


class Publisher:
    """Publishes envelopes and raw messages on one confirming channel.

    Many coroutines may publish at once: aio-pika pipelines them on the channel and each awaits
    its own confirm, so throughput is not capped at one broker round trip per message.

    On a robust connection, a publish made while the channel is being restored after a lost
    connection waits for it (up to the confirm timeout) instead of failing at once.
    """

    def __init__(self, channel: AbstractChannel, topology: Topology, *, timeout: float = 30.0):
        self._channel = channel
        self._topology = topology
        self._timeout = timeout
        self._exchanges: dict[str, AbstractExchange] = {}
        self._closed = False

    @classmethod
    async def open(
        cls, connection: AbstractConnection, topology: Topology, *, confirm_timeout: float = 30.0
    ) -> Publisher:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        return cls(channel, topology, timeout=confirm_timeout)

    @property
    def topology(self) -> Topology:
        return self._topology

    async def close(self) -> None:
        self._closed = True
        await self._channel.close()

    async def _exchange(self, name: str) -> AbstractExchange:
        exchange = self._exchanges.get(name)
        if exchange is None:
            if name == "":
                exchange = self._channel.default_exchange
            else:
                exchange = await self._channel.get_exchange(name, ensure=False)
            self._exchanges[name] = exchange
        return exchange

    async def publish(
        self,
        envelope: Envelope,
        *,
        queue: str | None = None,
        headers: HeadersType | None = None,
    ) -> None:
        """Publish one envelope to where the catalog routes it; raises :class:`PublishError`."""
        route = route_for(envelope, self._topology, queue)
        await self.publish_raw(route.exchange, route.routing_key, to_amqp(envelope, headers))

    async def publish_many(self, envelopes: Iterable[Envelope]) -> None:
        """Publish concurrently and wait for every confirm; raises on the first failure."""
        await asyncio.gather(*(self.publish(e) for e in envelopes))

    async def publish_raw(self, exchange: str, routing_key: str, message: aio_pika.Message) -> None:
        await self._restored(message)
        ex = await self._exchange(exchange)
        try:
            await ex.publish(
                message, routing_key=routing_key, mandatory=True, timeout=self._timeout
            )
        except DeliveryError as exc:
            reason = _return_reason(exc)
            raise PublishError(
                f"broker refused message {message.message_id} to {exchange!r}/{routing_key!r}: "
                f"{reason}"
            ) from exc
        except TimeoutError as exc:
            raise PublishError(
                f"no publisher confirm for {message.message_id} within {self._timeout}s"
            ) from exc

    async def _restored(self, message: aio_pika.Message) -> None:
        """Wait until a robust channel that lost its connection has been reopened.

        After a reconnect, aio-pika reopens a connection's channels one after another, in no
        fixed order: a consumer's channel may be delivering again while this one is still closed.
        Failing at once then fails work that is already done: a handler that committed could not
        announce its outcome, and its delivery would have to be handled again. The channel is
        usually back within milliseconds; a broker that stays away still fails the publish, within
        the same bound as a missing confirm.
        """
        channel = self._channel
        if self._closed or not channel.is_closed or not isinstance(channel, AbstractRobustChannel):
            return  # open, or closed for good: aio-pika raises on publish
        try:
            await asyncio.wait_for(channel.ready(), timeout=self._timeout)
        except TimeoutError as exc:
            raise PublishError(
                f"channel not restored within {self._timeout}s; {message.message_id} not published"
            ) from exc


def _return_reason(exc: DeliveryError) -> str:
    frame: Any = exc.frame
    text = getattr(frame, "reply_text", None)
    if text:
        return str(text)
    return "nacked" if frame is not None else "delivery failed"


def copy_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(headers or {})
