"""A tiny "PRS core": it records a deal and its payment and publishes them through an outbox.

Each change is written to the core's own database (SQLite by default, any SQLAlchemy URL works)
together with its event, in one transaction; the outbox relay then publishes the committed events
to the platform with publisher confirms. The platform replicates them and can verify and invoice
the deal.

    python prs_core.py --database sqlite:///core.sqlite3 --prefix acme

Reads ``AMQP_URL`` and ``PRS_NAMESPACE`` as the platform does; prints the ids it created as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Column, Engine, MetaData, Numeric, String, Table, create_engine, insert
from sqlalchemy.orm import Session

from prs_client import outbox
from prs_client.event_models import Deal, Organization, Payment, User, event
from prs_client.events import EventPublisher
from prs_client.models import UserRole

core = MetaData()
deals = Table(
    "deals",
    core,
    Column("deal_id", String(64), primary_key=True),
    Column("client_name", String(200), nullable=False),
    Column("value", Numeric(18, 4), nullable=False),
)
payments = Table(
    "payments",
    core,
    Column("payment_id", String(64), primary_key=True),
    Column("deal_id", String(64), nullable=False),
    Column("amount", Numeric(18, 4), nullable=False),
)


def record_organization(engine: Engine, org: str) -> None:
    """The organization and its salesperson, announced in one transaction."""
    with Session(engine) as session, session.begin():
        outbox.stage(
            session,
            event("organization.created", Organization(organization_id=org, name=f"{org} Ltd")),
        )
        outbox.stage(
            session,
            event(
                "user.created",
                User(
                    user_id=f"{org}-sales",
                    organization_id=org,
                    email=f"sales@{org}.example",
                    full_name="Sam Seller",
                    roles=[UserRole.SALESPERSON],
                ),
            ),
        )


def record_deal(engine: Engine, org: str, value: Decimal, paid: Decimal) -> tuple[str, str]:
    """A deal and a payment on it: the rows and their events commit together."""
    deal_id, payment_id = f"{org}-deal-1", f"{org}-payment-1"
    now = datetime.now(UTC).replace(microsecond=0)
    with Session(engine) as session, session.begin():
        session.execute(insert(deals).values(deal_id=deal_id, client_name="Globex", value=value))
        deal = Deal(
            deal_id=deal_id,
            organization_id=org,
            client_id=f"{org}-client-1",
            client_name="Globex",
            value=value,
            currency="USD",
            salesperson_id=f"{org}-sales",
            due_date=date.today() + timedelta(days=30),
            created_at=now - timedelta(days=2),
        )
        outbox.stage(session, event("deal.created", deal))
    with Session(engine) as session, session.begin():
        session.execute(
            insert(payments).values(payment_id=payment_id, deal_id=deal_id, amount=paid)
        )
        payment = Payment(
            payment_id=payment_id,
            deal_id=deal_id,
            organization_id=org,
            amount=paid,
            currency="USD",
            received_at=now,
        )
        outbox.stage(session, event("payment.recorded", payment))
    return deal_id, payment_id


async def relay(engine: Engine) -> int:
    """Publish everything committed to the outbox; each row is deleted after its confirm."""
    async with await EventPublisher.connect() as publisher:
        return await outbox.OutboxRelay(engine, publisher).relay_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite:///prs-core.sqlite3")
    parser.add_argument("--prefix", default="core")
    args = parser.parse_args()
    engine = create_engine(args.database)
    core.create_all(engine)
    outbox.metadata.create_all(engine)
    record_organization(engine, args.prefix)
    published = asyncio.run(relay(engine))
    deal_id, payment_id = record_deal(engine, args.prefix, Decimal("12000.00"), Decimal("4000.00"))
    published += asyncio.run(relay(engine))
    print(
        json.dumps(
            {
                "organization_id": args.prefix,
                "deal_id": deal_id,
                "payment_id": payment_id,
                "events_published": published,
            }
        )
    )


if __name__ == "__main__":
    main()
