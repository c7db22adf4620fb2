"""``prs seed-demo``: what it publishes (to a tap on the real broker) and what the data means."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractQueue
from typer.testing import CliRunner, Result

from deal_workflow.domain.checks import (
    DealFacts,
    OrganizationFacts,
    PaymentFacts,
    UserFacts,
    VerificationInput,
    verify,
)
from deal_workflow.domain.states import Outcome
from prs_cli import seed_demo
from prs_cli.main import build_app
from prs_shared.messaging import prs_events as prs
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.topology import Topology, declare_base

TAP_KEYS = ("organization.*", "user.*", "deal.*", "payment.*")
EXPECTED = {"organization.created": 2, "user.created": 8, "deal.created": 8, "payment.recorded": 4}


def prs_cli(*args: str) -> Result:
    return CliRunner().invoke(build_app(), list(args))


async def drain(queue: AbstractQueue, expected: int, timeout: float = 5.0) -> list[Envelope]:
    """Every message on the tap, waiting up to ``timeout`` for ``expected`` of them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    envelopes: list[Envelope] = []
    while True:
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            envelopes.append(Envelope.model_validate_json(message.body))
            continue
        if len(envelopes) >= expected or loop.time() > deadline:
            return envelopes
        await asyncio.sleep(0.05)


@pytest.fixture
def broker_env(amqp_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", amqp_url)
    monkeypatch.setenv("PRS_NAMESPACE", namespace)


@pytest.mark.usefixtures("broker_env")
async def test_seed_demo_publishes_the_events_it_prints(amqp_url: str, namespace: str) -> None:
    topology = Topology(namespace=namespace)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await declare_base(channel, topology)
        events = await channel.get_exchange(topology.events_exchange)
        tap = await channel.declare_queue(exclusive=True)
        for key in TAP_KEYS:
            await tap.bind(events, routing_key=key)

        result = await asyncio.to_thread(prs_cli, "seed-demo")
        assert result.exit_code == 0, result.output
        printed = json.loads(result.stdout)
        published = await drain(tap, sum(EXPECTED.values()))

        assert Counter(e.type for e in published) == EXPECTED
        assert printed["events_published"] == sum(EXPECTED.values())
        assert printed["namespace"] == namespace
        assert printed["exchange"] == topology.events_exchange
        assert "guest" not in printed["broker"]
        by_kind = {
            "organizations": ("organization.created", "organization_id"),
            "users": ("user.created", "user_id"),
            "deals": ("deal.created", "deal_id"),
            "payments": ("payment.recorded", "payment_id"),
        }
        for kind, (type_, id_field) in by_kind.items():
            ids = [e.payload[id_field] for e in published if e.type == type_]
            assert ids == printed[kind], kind
        # Every event is a valid snapshot, for the organization it names, of one journey.
        models = {
            "organization.created": prs.Organization,
            "user.created": prs.User,
            "deal.created": prs.Deal,
            "payment.recorded": prs.Payment,
        }
        for envelope in published:
            snapshot = models[envelope.type].model_validate(envelope.payload)
            assert envelope.organization_id == snapshot.organization_id  # type: ignore[attr-defined]
        assert len({e.correlation_id for e in published}) == 1
        # PRS's order: organizations, then users, then deals, then payments.
        order = [e.type for e in published]
        assert order == sorted(order, key=list(EXPECTED).index)

        again = await asyncio.to_thread(prs_cli, "seed-demo")
        assert again.exit_code == 0, again.output
        repeated = json.loads(again.stdout)
        for kind in ("organizations", "users", "deals", "payments", "scenarios"):
            assert repeated[kind] == printed[kind], kind
        second = await drain(tap, sum(EXPECTED.values()))
        # The same snapshots (same ids and versions), which replicas already hold and ignore.
        assert sorted(e.payload.get("version", 0) for e in second) == sorted(
            e.payload.get("version", 0) for e in published
        )


@pytest.mark.usefixtures("broker_env")
async def test_a_newer_snapshot_version_is_published_as_changes(
    amqp_url: str, namespace: str
) -> None:
    topology = Topology(namespace=namespace)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await declare_base(channel, topology)
        events = await channel.get_exchange(topology.events_exchange)
        tap = await channel.declare_queue(exclusive=True)
        for key in TAP_KEYS:
            await tap.bind(events, routing_key=key)

        result = await asyncio.to_thread(
            prs_cli, "seed-demo", "--prefix=acme2", "--snapshot-version=2"
        )
        assert result.exit_code == 0, result.output
        published = await drain(tap, sum(EXPECTED.values()))

    assert Counter(e.type for e in published) == {
        "organization.changed": 2,
        "user.changed": 8,
        "deal.changed": 8,
        "payment.recorded": 4,
    }
    assert {e.payload["version"] for e in published if "version" in e.payload} == {2}
    assert json.loads(result.stdout)["organizations"] == ["acme2-acme", "acme2-globex"]


@pytest.mark.usefixtures("broker_env")
async def test_dry_run_publishes_nothing(amqp_url: str, namespace: str) -> None:
    topology = Topology(namespace=namespace)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await declare_base(channel, topology)
        events = await channel.get_exchange(topology.events_exchange)
        tap = await channel.declare_queue(exclusive=True)
        for key in TAP_KEYS:
            await tap.bind(events, routing_key=key)

        result = await asyncio.to_thread(prs_cli, "seed-demo", "--dry-run")
        assert result.exit_code == 0, result.output
        assert await drain(tap, 1, timeout=0.5) == []

    printed = json.loads(result.stdout)
    assert printed["dry_run"] is True
    assert printed["events_published"] == 0
    assert len(printed["deals"]) == 8


def test_an_unreachable_broker_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://guest:secret@127.0.0.1:1/")
    result = prs_cli("seed-demo")

    assert result.exit_code == 1
    assert "RabbitMQ not reachable at amqp://127.0.0.1:1/" in result.stderr
    assert "secret" not in result.output
    assert "Traceback" not in result.output


async def test_with_a_clusters_urls_the_first_node_that_answers_is_used(
    amqp_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A node that is down first, then the broker of the test: as AMQP_URL lists a cluster's.
    monkeypatch.setenv("AMQP_URL", f"amqp://guest:secret@127.0.0.1:1/,{amqp_url}")
    monkeypatch.setenv("PRS_NAMESPACE", namespace)
    topology = Topology(namespace=namespace)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await declare_base(channel, topology)
        events = await channel.get_exchange(topology.events_exchange)
        tap = await channel.declare_queue(exclusive=True)
        for key in TAP_KEYS:
            await tap.bind(events, routing_key=key)

        result = await asyncio.to_thread(prs_cli, "seed-demo")
        assert result.exit_code == 0, result.output
        published = await drain(tap, sum(EXPECTED.values()))

    assert Counter(e.type for e in published) == EXPECTED
    printed = json.loads(result.stdout)
    assert printed["broker"].startswith("amqp://127.0.0.1:1/,amqp://")
    assert "secret" not in result.output


async def test_on_quorum_queues_it_declares_them_as_the_services_do(
    amqp_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMQP_URL", amqp_url)
    monkeypatch.setenv("PRS_NAMESPACE", namespace)
    monkeypatch.setenv("PRS_QUEUE_TYPE", "quorum")
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        # As a service started first would have: the base topology on quorum queues.
        await declare_base(await connection.channel(), seed_demo.SeedSettings().topology())

    result = await asyncio.to_thread(prs_cli, "seed-demo")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["events_published"] == sum(EXPECTED.values())


@pytest.mark.parametrize("prefix", ["", "Demo", "demo_1", "-demo", "x" * 25])
def test_a_prefix_that_cannot_start_ids_and_domains_is_a_usage_error(prefix: str) -> None:
    result = prs_cli("seed-demo", f"--prefix={prefix}", "--dry-run")

    assert result.exit_code == 2
    assert "--prefix" in result.stderr


# The data itself, judged by deal-workflow's own verification rules.

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def verification_of(data: seed_demo.DemoData, deal: prs.Deal) -> Any:
    org = next(o for o in data.organizations if o.organization_id == deal.organization_id)
    seller = next((u for u in data.users if u.user_id == deal.salesperson_id), None)

    def facts(d: prs.Deal) -> DealFacts:
        return DealFacts(
            deal_id=d.deal_id,
            organization_id=d.organization_id,
            client_id=d.client_id,
            client_name=d.client_name,
            value=d.value,
            currency=d.currency,
            salesperson_id=d.salesperson_id,
            due_date=d.due_date,
            attachment_ids=tuple(d.attachment_ids),
            created_at=d.created_at,
        )

    return verify(
        VerificationInput(
            deal=facts(deal),
            organization=OrganizationFacts(org.organization_id, org.currency),
            salesperson=UserFacts(
                seller.user_id,
                seller.organization_id,
                seller.full_name,
                [r.value for r in seller.roles],
                seller.active,
            )
            if seller
            else None,
            other_deals=[facts(d) for d in data.deals if d.organization_id == deal.organization_id],
            payments=[
                PaymentFacts(p.payment_id, p.amount, p.currency)
                for p in data.payments
                if p.deal_id == deal.deal_id
            ],
        )
    )


@pytest.mark.parametrize(
    ("scenario", "outcome"),
    [
        (seed_demo.VALID, Outcome.PASSED),
        (seed_demo.UNKNOWN_SALESPERSON, Outcome.FAILED),
        (seed_demo.PAST_DUE, Outcome.PASSED),
        (seed_demo.NEEDS_REVIEW, Outcome.NEEDS_REVIEW),
    ],
)
def test_each_scenario_verifies_as_its_name_says(scenario: str, outcome: Outcome) -> None:
    data = seed_demo.build("demo", now=NOW)
    deal_ids = data.scenarios[scenario]

    assert len(deal_ids) == 2  # one per organization
    for deal_id in deal_ids:
        deal = next(d for d in data.deals if d.deal_id == deal_id)
        verification = verification_of(data, deal)
        assert verification.outcome is outcome, (deal_id, verification.reasons)


def test_the_organizations_users_and_dates() -> None:
    data = seed_demo.build("demo", now=NOW)
    acme, globex = data.organizations

    assert acme.commission_policy.kind == "flat"
    assert acme.commission_policy.rate == Decimal("0.05")
    assert globex.commission_policy.kind == "tiered"
    assert len(globex.commission_policy.tiers) == 3
    emails = {str(u.email) for u in data.users}
    assert "admin@demo-acme.example" in emails
    assert "finance@demo-globex.example" in emails
    roles = Counter((u.organization_id, r.value) for u in data.users for r in u.roles)
    for org in ("demo-acme", "demo-globex"):
        for role in ("admin", "verifier", "salesperson", "finance"):
            assert roles[(org, role)] == 1
    past_due = [d for d in data.deals if d.deal_id in data.scenarios[seed_demo.PAST_DUE]]
    assert all(d.due_date is not None and d.due_date < NOW.date() for d in past_due)
    paid = {d.deal_id for d in past_due} & {p.deal_id for p in data.payments}
    assert paid == {d.deal_id for d in past_due}  # partly paid, so overdue detection finds them
    # Pending for more than a day, so verification reminders have something to remind of.
    assert all(NOW - d.created_at > timedelta(days=1) for d in data.deals)
