"""``prs seed-demo``: demo data, loaded the way PRS itself would load it — by publishing events.

Nothing goes through the gateway. The command publishes ``organization.created``,
``user.created``, ``deal.created`` and ``payment.recorded`` snapshots (see
``prs_shared.messaging.prs_events``) to the events exchange of ``$PRS_NAMESPACE`` on
``$AMQP_URL``, with publisher confirms, after declaring the base topology. The services that keep
replicas (deal-workflow, notifier, file-processor) pick them up from there.

The data, per organization (ids start with ``--prefix``, ``demo`` by default):

- ``<prefix>-acme`` (USD, a flat 5% commission) and ``<prefix>-globex`` (EUR, tiered: 3% up to
  10,000, 5% up to 50,000, 7% above);
- four users, ``<org>-admin``, ``-verifier``, ``-sales`` and ``-finance``, each with the role of
  that name and an address like ``admin@<org>.example``;
- four deals: ``-deal-1`` complete and valid (verification passes), ``-deal-2`` sold by a
  salesperson PRS never announced (verification rejects it), ``-deal-3`` valid but past its due
  date and partly paid (overdue detection finds it), ``-deal-4`` for a walk-in client without a PRS
  client id (verification sends it to manual review);
- two payments: part of ``-deal-1`` and part of ``-deal-3``.

Idempotent: ids are fixed by the prefix and every snapshot carries ``--snapshot-version`` (1), so
running the command again publishes snapshots the replicas already hold and ignore, and payments
are recorded once by id. A higher ``--snapshot-version`` is published as ``*.changed`` and
replaces the replicas' rows (dates are recomputed from today); a different prefix adds a second,
independent data set.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aio_pika
from aio_pika.abc import AbstractConnection
from aio_pika.exceptions import AMQPException
from pydantic import ValidationError

from prs_cli.errors import CliError, UsageError
from prs_shared.messaging import prs_events as prs
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.failover import split_urls
from prs_shared.messaging.messages import Message
from prs_shared.messaging.publisher import Publisher, PublishError
from prs_shared.messaging.topology import Topology, declare_base
from prs_shared.settings import ServiceSettings

PREFIX_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$")
"""Lower case, digits and inner hyphens: the prefix is part of ids and of e-mail domains."""

CONNECT_TIMEOUT = 10.0
CONFIRM_TIMEOUT = 15.0

VALID = "valid"
UNKNOWN_SALESPERSON = "unknown_salesperson"
PAST_DUE = "past_due"
NEEDS_REVIEW = "needs_review"
SCENARIOS = (VALID, UNKNOWN_SALESPERSON, PAST_DUE, NEEDS_REVIEW)


class SeedSettings(ServiceSettings):
    """Where to publish: ``AMQP_URL`` and ``PRS_NAMESPACE``, as every service reads them."""

    service_name: ClassVar[str] = "seed-demo"


@dataclass(frozen=True)
class OrgSpec:
    """What differs between the two demo organizations."""

    short: str
    name: str
    currency: str
    policy: prs.CommissionPolicy
    people: tuple[str, str, str, str]
    """Full names of the admin, verifier, salesperson and finance user."""
    clients: tuple[str, str, str]
    values: tuple[str, str, str, str]
    paid: tuple[str, str]
    """Payments on deal 1 and deal 3."""


ORGANIZATIONS = (
    OrgSpec(
        short="acme",
        name="Acme Corporation",
        currency="USD",
        policy=prs.CommissionPolicy(kind="flat", rate=Decimal("0.05")),
        people=("Alice Adams", "Victor Vance", "Sam Seller", "Fiona Finch"),
        clients=("Initech", "Hooli", "Vandelay Industries"),
        values=("12000.00", "8000.00", "5000.00", "2500.00"),
        paid=("4000.00", "1500.00"),
    ),
    OrgSpec(
        short="globex",
        name="Globex GmbH",
        currency="EUR",
        policy=prs.CommissionPolicy(
            kind="tiered",
            tiers=[
                prs.CommissionTier(up_to=Decimal("10000"), rate=Decimal("0.03")),
                prs.CommissionTier(up_to=Decimal("50000"), rate=Decimal("0.05")),
                prs.CommissionTier(up_to=None, rate=Decimal("0.07")),
            ],
        ),
        people=("Greta Gruber", "Otto Ostermann", "Lena Lang", "Karl Kaiser"),
        clients=("Stark Logistik", "Wayne Handel", "Umbrella Pharma"),
        values=("62000.00", "15000.00", "9000.00", "3100.00"),
        paid=("20000.00", "2000.00"),
    ),
)
ROLES = (
    ("admin", prs.UserRole.ADMIN),
    ("verifier", prs.UserRole.VERIFIER),
    ("sales", prs.UserRole.SALESPERSON),
    ("finance", prs.UserRole.FINANCE),
)


@dataclass
class DemoData:
    """The snapshots to publish, in the order PRS would announce them."""

    organizations: list[prs.Organization] = field(default_factory=list)
    users: list[prs.User] = field(default_factory=list)
    deals: list[prs.Deal] = field(default_factory=list)
    payments: list[prs.Payment] = field(default_factory=list)
    scenarios: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SCENARIOS})

    def ids(self) -> dict[str, Any]:
        """The ids by kind, and the deals by what verification will make of them."""
        return {
            "organizations": [o.organization_id for o in self.organizations],
            "users": [u.user_id for u in self.users],
            "deals": [d.deal_id for d in self.deals],
            "payments": [p.payment_id for p in self.payments],
            "scenarios": self.scenarios,
        }


def build(prefix: str, snapshot_version: int = 1, now: datetime | None = None) -> DemoData:
    """The demo data set for ``prefix`` (dates relative to ``now``)."""
    validate_prefix(prefix)
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    today = moment.date()
    data = DemoData()
    for spec in ORGANIZATIONS:
        _add_organization(data, spec, f"{prefix}-{spec.short}", snapshot_version, moment, today)
    return data


def _add_organization(
    data: DemoData, spec: OrgSpec, org: str, version: int, now: datetime, today: date
) -> None:
    data.organizations.append(
        prs.Organization(
            organization_id=org,
            name=spec.name,
            currency=spec.currency,
            commission_policy=spec.policy,
            version=version,
        )
    )
    for (suffix, role), full_name in zip(ROLES, spec.people, strict=True):
        data.users.append(
            prs.User(
                user_id=f"{org}-{suffix}",
                organization_id=org,
                email=f"{suffix if suffix != 'sales' else 'salesperson'}@{org}.example",
                full_name=full_name,
                roles=[role],
                version=version,
            )
        )
    sales = f"{org}-sales"
    value = [Decimal(v) for v in spec.values]
    deals = [
        # Everything verification checks is in order.
        (VALID, f"{org}-client-1", spec.clients[0], value[0], sales, 30, 3),
        # PRS never announced this salesperson: "salesperson ... is not known" rejects it.
        (UNKNOWN_SALESPERSON, f"{org}-client-2", spec.clients[1], value[1], f"{org}-gone", 45, 2),
        # Valid, but due ten days ago and only partly paid: overdue.
        (PAST_DUE, f"{org}-client-3", spec.clients[2], value[2], sales, -10, 40),
        # A walk-in client without a PRS client id: a person has to look at it.
        (NEEDS_REVIEW, None, "Walk-in customer", value[3], sales, 20, 1.25),
    ]
    for number, (scenario, client_id, client, amount, seller, due, age) in enumerate(deals, 1):
        deal_id = f"{org}-deal-{number}"
        data.deals.append(
            prs.Deal(
                deal_id=deal_id,
                organization_id=org,
                client_id=client_id,
                client_name=client,
                value=amount,
                currency=spec.currency,
                salesperson_id=seller,
                due_date=today + timedelta(days=due),
                created_at=now - timedelta(days=age),
                version=version,
            )
        )
        data.scenarios[scenario].append(deal_id)
    for number, (deal_number, amount_text, days_ago) in enumerate(
        ((1, spec.paid[0], 1), (3, spec.paid[1], 5)), 1
    ):
        data.payments.append(
            prs.Payment(
                payment_id=f"{org}-payment-{number}",
                deal_id=f"{org}-deal-{deal_number}",
                organization_id=org,
                amount=Decimal(amount_text),
                currency=spec.currency,
                received_at=now - timedelta(days=days_ago),
            )
        )


def validate_prefix(prefix: str) -> str:
    """The prefix, if it can start ids and e-mail domains; a usage error otherwise."""
    if not PREFIX_PATTERN.match(prefix):
        raise UsageError(
            f"{prefix!r}: use 1-24 lower-case letters, digits and inner hyphens", param="--prefix"
        )
    return prefix


def envelopes(data: DemoData, snapshot_version: int = 1) -> list[list[Envelope]]:
    """The events in four batches: organizations, users, deals, payments (one journey)."""
    journey = uuid.uuid4()
    changed = snapshot_version > 1
    batches: list[tuple[str, Sequence[Message]]] = [
        (
            (prs.ORGANIZATION_CHANGED if changed else prs.ORGANIZATION_CREATED).type,
            data.organizations,
        ),
        ((prs.USER_CHANGED if changed else prs.USER_CREATED).type, data.users),
        ((prs.DEAL_CHANGED if changed else prs.DEAL_CREATED).type, data.deals),
        (prs.PAYMENT_RECORDED.type, data.payments),
    ]
    return [
        [
            Envelope(
                type=type_,
                payload=snapshot.model_dump(mode="json"),
                organization_id=getattr(snapshot, "organization_id", None),
                correlation_id=journey,
            )
            for snapshot in snapshots
        ]
        for type_, snapshots in batches
    ]


async def publish(settings: ServiceSettings, batches: Sequence[Sequence[Envelope]]) -> int:
    """Declare the topology and publish batch after batch, each confirmed before the next.

    Batches keep PRS's order (an organization before its users, a deal before its payments);
    the replicas cope with any order, but a reader of the events should not have to.
    """
    topology = settings.topology()
    connection = await connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        await declare_base(channel, topology)
        await channel.close()
        publisher = await Publisher.open(connection, topology, confirm_timeout=CONFIRM_TIMEOUT)
        try:
            for batch in batches:
                await publisher.publish_many(batch)
        finally:
            await publisher.close()
    return sum(len(b) for b in batches)


def run(
    *,
    prefix: str = "demo",
    snapshot_version: int = 1,
    dry_run: bool = False,
    settings: ServiceSettings | None = None,
) -> dict[str, Any]:
    """Build the data, publish it (unless ``dry_run``) and return what to print."""
    data = build(prefix, snapshot_version)
    try:
        settings = settings or SeedSettings()
    except ValidationError as exc:
        raise CliError(f"invalid configuration: {exc.errors()[0]['msg']}") from None
    broker = safe_url(settings.amqp_url)
    published = 0
    if not dry_run:
        try:
            published = asyncio.run(publish(settings, envelopes(data, snapshot_version)))
        except PublishError as exc:
            raise CliError(f"RabbitMQ at {broker} refused an event: {exc}") from exc
        except (OSError, AMQPException, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise CliError(f"RabbitMQ not reachable at {broker}: {reason}") from exc
    return {
        "namespace": settings.namespace,
        "broker": broker,
        "exchange": Topology(namespace=settings.namespace).events_exchange,
        "dry_run": dry_run,
        "events_published": published,
        **data.ids(),
    }


async def connect(amqp_url: str) -> AbstractConnection:
    """The first node of ``AMQP_URL`` (one URL, or a cluster's, comma-separated) that answers."""
    failure: Exception | None = None
    for url in split_urls(amqp_url):
        try:
            return await aio_pika.connect(url, timeout=CONNECT_TIMEOUT)
        except (OSError, AMQPException, TimeoutError) as exc:
            failure = exc
    assert failure is not None  # split_urls gives at least one URL
    raise failure


def safe_url(url: str) -> str:
    """The broker's address without its credentials; every node's, for a cluster."""
    return ",".join(_safe_one(u) for u in split_urls(url))


def _safe_one(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path or '/'}"
