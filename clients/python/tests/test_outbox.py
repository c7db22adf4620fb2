"""The event publisher and the outbox relay against the real RabbitMQ, with a SQLite database."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aio_pika
import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from prs_client import outbox
from prs_client.event_models import Deal, Event, Payment, User, event
from prs_client.events import EventPublisher, PublishError, events_exchange


@pytest.fixture
async def channel(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(amqp_url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


@pytest.fixture
async def bound_queue(
    channel: aio_pika.abc.AbstractChannel,
) -> AsyncIterator[tuple[str, aio_pika.abc.AbstractQueue]]:
    """A namespace with the platform's events exchange and a queue bound to deal and payment events."""
    namespace = f"c{uuid.uuid4().hex[:10]}."
    exchange = await channel.declare_exchange(
        events_exchange(namespace), aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(f"{namespace}probe", exclusive=True)
    for key in ("deal.*", "payment.*"):
        await queue.bind(exchange, routing_key=key)
    yield namespace, queue
    await channel.exchange_delete(events_exchange(namespace))


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    """A PRS service's own SQLite database, with the outbox table."""
    database = create_engine(f"sqlite:///{tmp_path / 'core.sqlite3'}")
    outbox.metadata.create_all(database)
    return database


def staged(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(outbox.outbox_table)) or 0)


def a_deal(deal_id: str) -> Deal:
    return Deal(
        deal_id=deal_id,
        organization_id="org-1",
        client_name="Globex",
        value=Decimal("1200.50"),
        currency="USD",
        created_at=datetime.now(UTC),
    )


async def received(queue: aio_pika.abc.AbstractQueue) -> list[Event]:
    events = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        events.append(Event.model_validate_json(message.body))
    return events


async def test_committed_events_are_relayed_in_order_and_deleted_and_rolled_back_ones_never(
    amqp_url: str, bound_queue: tuple[str, aio_pika.abc.AbstractQueue], engine: Engine
) -> None:
    namespace, queue = bound_queue
    deal = event("deal.created", a_deal("deal-1"))
    payment = event(
        "payment.recorded",
        Payment(
            payment_id="p-1",
            deal_id="deal-1",
            organization_id="org-1",
            amount=Decimal("100"),
            currency="USD",
            received_at=datetime.now(UTC),
        ),
    )
    with Session(engine) as session, session.begin():
        outbox.stage(session, deal)
        outbox.stage(session, payment)
    with Session(engine) as session:
        session.begin()
        outbox.stage(session, event("deal.changed", a_deal("deal-rolled-back")))
        session.rollback()

    async with await EventPublisher.connect(amqp_url, namespace=namespace) as publisher:
        assert await outbox.OutboxRelay(engine, publisher).relay_all() == 2

    assert [(e.id, e.type, e.payload["deal_id"]) for e in await received(queue)] == [
        (deal.id, "deal.created", "deal-1"),
        (payment.id, "payment.recorded", "deal-1"),
    ]
    assert staged(engine) == 0


async def test_an_unroutable_event_is_an_error_and_stays_in_the_outbox(
    amqp_url: str, bound_queue: tuple[str, aio_pika.abc.AbstractQueue], engine: Engine
) -> None:
    namespace, _ = bound_queue
    # Nothing is bound to user events here and the exchange has no alternate: the broker
    # returns the mandatory message.
    user = User(user_id="u-1", organization_id="org-1", email="u@org.example", full_name="U")
    with Session(engine) as session, session.begin():
        outbox.stage(session, event("user.created", user))
    async with await EventPublisher.connect(amqp_url, namespace=namespace) as publisher:
        with pytest.raises(PublishError, match=r"user\.created"):
            await outbox.OutboxRelay(engine, publisher).relay_once()
    assert staged(engine) == 1


async def test_a_namespace_without_the_platform_is_refused_naming_the_exchange(
    amqp_url: str,
) -> None:
    namespace = f"missing{uuid.uuid4().hex[:8]}."
    with pytest.raises(PublishError, match=re.escape(f"{namespace}prs.events")):
        await EventPublisher.connect(amqp_url, namespace=namespace)


def test_an_event_refuses_a_snapshot_of_the_wrong_kind() -> None:
    with pytest.raises(TypeError, match="Payment"):
        event("payment.recorded", a_deal("deal-1"))
    with pytest.raises(ValueError, match="not a PRS domain event"):
        event("deal.verified", a_deal("deal-1"))
