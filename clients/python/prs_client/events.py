"""Publishing PRS domain events to the platform's broker (the ``events`` extra: aio-pika).

Every event goes to the platform's topic exchange ``<PRS_NAMESPACE>prs.events`` with its type as
routing key, on a channel with publisher confirms and ``mandatory`` routing: ``publish`` returns
only once the broker has taken responsibility for the message, and raises :class:`PublishError`
when it was returned, refused or not confirmed in time — never silence.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from types import TracebackType
from typing import Self

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, DeliveryMode
from aiormq.exceptions import ChannelNotFoundEntity, DeliveryError

from prs_client.errors import PRSError
from prs_client.event_models import Event

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/"
EVENTS_EXCHANGE = "prs.events"
# The AMQP priority of a medium message on the platform's priority queues (high 3, low 1).
_AMQP_PRIORITY = {"high": 3, "medium": 2, "low": 1}


class PublishError(PRSError):
    """The broker did not take responsibility for an event (returned, refused or unconfirmed)."""


def events_exchange(namespace: str | None = None) -> str:
    """The platform's events exchange; ``namespace`` defaults to ``$PRS_NAMESPACE``."""
    prefix = os.environ.get("PRS_NAMESPACE", "") if namespace is None else namespace
    return f"{prefix}{EVENTS_EXCHANGE}"


def to_amqp(event: Event) -> aio_pika.Message:
    """The AMQP message of an event, with the properties the platform's consumers read."""
    return aio_pika.Message(
        body=event.model_dump_json().encode(),
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=str(event.id),
        correlation_id=str(event.correlation_id),
        type=event.type,
        priority=_AMQP_PRIORITY[event.priority.value],
        timestamp=event.occurred_at,
    )


class EventPublisher:
    """Publishes :class:`~prs_client.event_models.Event` s with confirms; safe to share.

    Many coroutines may publish at once: each awaits its own confirm, so throughput is not one
    broker round trip per message.
    """

    def __init__(
        self,
        connection: AbstractConnection,
        channel: AbstractChannel,
        exchange: AbstractExchange,
        *,
        confirm_timeout: float,
        owns_connection: bool,
    ) -> None:
        self._connection = connection
        self._channel = channel
        self._exchange = exchange
        self._timeout = confirm_timeout
        self._owns_connection = owns_connection

    @classmethod
    async def connect(
        cls,
        amqp_url: str | None = None,
        *,
        namespace: str | None = None,
        confirm_timeout: float = 30.0,
        connection: AbstractConnection | None = None,
    ) -> EventPublisher:
        """Connect to ``amqp_url`` (default ``$AMQP_URL``), or use ``connection``.

        The platform declares its exchanges when it starts; a missing one is an error naming it.
        """
        owns = connection is None
        if connection is None:
            connection = await aio_pika.connect_robust(
                amqp_url or os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
            )
        # on_return_raises: without it aio-pika drops an unroutable mandatory message silently.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        name = events_exchange(namespace)
        try:
            exchange = await channel.get_exchange(name, ensure=True)
        except ChannelNotFoundEntity as exc:
            if owns:
                await connection.close()
            raise PublishError(
                f"exchange {name!r} does not exist: start the platform's services "
                "(they declare it), or check PRS_NAMESPACE"
            ) from exc
        return cls(
            connection, channel, exchange, confirm_timeout=confirm_timeout, owns_connection=owns
        )

    async def publish(self, event: Event) -> None:
        """Publish one event and wait for the broker's confirm; :class:`PublishError` if none."""
        message = to_amqp(event)
        try:
            await self._exchange.publish(
                message, routing_key=event.type, mandatory=True, timeout=self._timeout
            )
        except DeliveryError as exc:
            raise PublishError(f"broker refused event {event.id} ({event.type}): {exc}") from exc
        except TimeoutError as exc:
            raise PublishError(
                f"no publisher confirm for event {event.id} within {self._timeout}s"
            ) from exc

    async def publish_many(self, events: Iterable[Event]) -> None:
        """Publish concurrently and wait for every confirm; raises on the first failure."""
        await asyncio.gather(*(self.publish(e) for e in events))

    async def close(self) -> None:
        await self._channel.close()
        if self._owns_connection:
            await self._connection.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
