"""Recipients, deal events and webhooks of another organization (DESIGN.md §3 rule 8).

The envelope's ``organization_id`` is the caller's organization. A notification to another
organization's user or address must fail exactly like one to an unknown user or address, and no
email may go out (aiosmtpd receives nothing, the sent-mail ledger holds nothing).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from notifier.models import SentMail, WebhookDelivery, WebhookEndpoint
from prs_shared.messaging.deals import AUDIT_REPORT_GENERATED, DEAL_VERIFIED
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.notifications import SEND_NOTIFICATION
from prs_shared.messaging.webhooks import REGISTER_WEBHOOK
from prs_shared.testing.fixtures import final_lifecycle

MINE, THEIRS = "org-1", "org-2"  # the kit's directory: org-2 has u-other, oz@other.example.com

# recipient_type → (field, own recipient, another organization's, nobody's)
RECIPIENTS = {
    "user": ("user_id", "u-sales", "u-other", "u-nobody"),
    "email": ("email", "sam@acme.example.com", "oz@other.example.com", "who@nowhere.example.com"),
}


def notification(org: str | None, **payload: Any) -> Envelope:
    return Envelope(
        type=SEND_NOTIFICATION.type,
        organization_id=org,
        task_id=uuid.uuid4(),
        payload={"notification_type": "verification_approved", **payload},
    )


async def ledger_recipients(host: Any) -> list[str]:
    async with host.components.ledger_engine.connect() as conn:
        return sorted((await conn.execute(select(SentMail.recipient))).scalars().all())


@pytest.mark.parametrize("recipient_type", sorted(RECIPIENTS))
async def test_a_recipient_of_another_organization_fails_like_an_unknown_one_and_gets_nothing(
    kit: Any,
    run_notifier: Any,
    database_url: str,
    publisher: Any,
    smtp_sink: Any,
    tap: Any,
    recipient_type: str,
) -> None:
    field, own, foreign, unknown = RECIPIENTS[recipient_type]
    events = await tap("task.#", "notification.#")

    def to(recipient: str) -> Envelope:
        return notification(MINE, recipient_type=recipient_type, **{field: recipient})

    mine, theirs, nobody = to(own), to(foreign), to(unknown)
    async with run_notifier(database_url) as host:
        await kit.seed_directory(publisher, host)
        for envelope in (theirs, nobody, mine):
            await publisher.publish(envelope)
        # The delivered mail's notification.sent comes through the ledger's own outbox, which
        # may relay it after the task's outcome.
        seen = await events.wait_for(
            lambda s: (
                all(final_lifecycle(s, e.task_id) for e in (theirs, nobody, mine))
                and any(e.type.startswith("notification.") for e in s)
            ),
            timeout=30,
        )
        ledger = await ledger_recipients(host)

    refused_theirs, refused_unknown = (
        final_lifecycle(seen, theirs.task_id),
        final_lifecycle(seen, nobody.task_id),
    )
    assert refused_theirs is not None
    assert refused_unknown is not None
    # An unknown user may not have reached the directory yet: retried, then dead-lettered.
    # An address or a role is checked against what the directory holds: failed at once.
    assert refused_unknown.status == ("DEAD_LETTERED" if recipient_type == "user" else "FAILED")
    assert (refused_theirs.status, refused_theirs.attempt) == (
        refused_unknown.status,
        refused_unknown.attempt,
    )
    assert (refused_theirs.error or "").replace(foreign, "<id>") == (
        refused_unknown.error or ""
    ).replace(unknown, "<id>")
    delivered = final_lifecycle(seen, mine.task_id)
    assert delivered is not None
    assert delivered.status == "SUCCEEDED", delivered.error
    own_address = RECIPIENTS["email"][1]
    assert [r.rcpt_tos for r in smtp_sink.received] == [[own_address]]
    assert ledger == [own_address]
    outcomes = [e for e in seen if e.type.startswith("notification.")]
    assert [e.causation_id for e in outcomes] == [mine.id]


async def test_a_role_reaches_only_the_callers_organization(
    kit: Any, run_notifier: Any, publisher: Any, smtp_sink: Any, tap: Any
) -> None:
    events = await tap("task.#")
    admins = notification(MINE, recipient_type="role", role="admin")
    async with run_notifier() as host:
        await kit.seed_directory(publisher, host)
        await publisher.publish(admins)
        await events.wait_for(lambda s: final_lifecycle(s, admins.task_id) is not None)
    done = final_lifecycle(events.seen, admins.task_id)
    assert done is not None
    assert done.status == "SUCCEEDED"
    # org-2's admin (oz@other.example.com) is an admin too, of another organization.
    got = sorted(address for r in smtp_sink.received for address in r.rcpt_tos)
    assert got == ["ada@acme.example.com", "bo@acme.example.com"]


def verified(payload_org: str, envelope_org: str | None) -> Envelope:
    return Envelope(
        type=DEAL_VERIFIED.type,
        organization_id=envelope_org,
        payload={
            "deal_id": "D-9",
            "organization_id": payload_org,
            "client_name": "Globex",
            "value": "10.00",
            "currency": "USD",
            "salesperson_id": "u-other",
            "checks": ["amount"],
        },
    )


async def test_an_organizations_event_in_another_organizations_message_reaches_nobody(
    kit: Any,
    run_notifier: Any,
    database_url: str,
    publisher: Any,
    smtp_sink: Any,
    hook_receiver: Any,
    tap: Any,
) -> None:
    events = await tap("task.#")
    registration = Envelope(
        type=REGISTER_WEBHOOK.type,
        organization_id=THEIRS,
        task_id=uuid.uuid4(),
        payload={
            "url": hook_receiver.url,
            "event_types": ["deal.verified"],
            "secret": "s" * 32,
        },
    )
    async with run_notifier(database_url, webhook_allow_private=True) as host:
        await kit.seed_directory(publisher, host)
        await publisher.publish(registration)
        await events.wait_for(lambda s: final_lifecycle(s, registration.task_id) is not None)
        # About org-2's deal, but sent in org-1's name: refused; then the genuine one.
        await publisher.publish(verified(THEIRS, MINE))
        await publisher.publish(verified(THEIRS, THEIRS))

        async def delivered() -> list[WebhookDelivery]:
            async with host.sessions() as session:
                return list((await session.scalars(select(WebhookDelivery))).all())

        await kit.eventually(delivered, message="the genuine event's webhook")
        await kit.eventually(lambda: _received(smtp_sink), message="the genuine event's email")
        await kit.settle()
        deliveries = await delivered()

    assert len(deliveries) == 1
    assert len(smtp_sink.received) == 1
    assert smtp_sink.received[0].rcpt_tos == ["oz@other.example.com"]


async def _received(smtp_sink: Any) -> bool:
    return bool(smtp_sink.received)


async def test_registering_another_organizations_url_changes_nothing_of_theirs(
    kit: Any, run_notifier: Any, database_url: str, publisher: Any, hook_receiver: Any, tap: Any
) -> None:
    events = await tap("task.#")

    def register(org: str, secret: str) -> Envelope:
        return Envelope(
            type=REGISTER_WEBHOOK.type,
            organization_id=org,
            task_id=uuid.uuid4(),
            payload={"url": hook_receiver.url, "event_types": ["deal.verified"], "secret": secret},
        )

    theirs, mine = register(THEIRS, "t" * 32), register(MINE, "m" * 32)
    async with run_notifier(database_url, webhook_allow_private=True) as host:
        await publisher.publish(theirs)
        await events.wait_for(lambda s: final_lifecycle(s, theirs.task_id) is not None)
        await publisher.publish(mine)
        await events.wait_for(lambda s: final_lifecycle(s, mine.task_id) is not None)
        async with host.sessions() as session:
            endpoints = {
                e.organization_id: e.secret
                for e in (await session.scalars(select(WebhookEndpoint))).all()
            }
    created = final_lifecycle(events.seen, mine.task_id)
    assert created is not None
    assert created.result is not None
    assert created.result["created"] is True
    assert endpoints == {THEIRS: "t" * 32, MINE: "m" * 32}


async def test_a_report_is_announced_to_its_own_organization_not_to_a_requester_of_another(
    kit: Any, run_notifier: Any, publisher: Any, smtp_sink: Any
) -> None:
    generated = Envelope(
        type=AUDIT_REPORT_GENERATED.type,
        organization_id=MINE,
        payload={
            "report_id": "rep-9",
            "organization_id": MINE,
            "report_type": "deals",
            "days": 7,
            "files": {"html": "reports/rep-9.html"},
            "requested_by": "u-other",  # a user of org-2
        },
    )
    async with run_notifier() as host:
        await kit.seed_directory(publisher, host)
        await publisher.publish(generated)

        async def both_admins() -> bool:
            return len(smtp_sink.received) >= 2

        await kit.eventually(both_admins, message="the report's organization's admins emailed")
        await kit.settle()
    got = sorted(address for r in smtp_sink.received for address in r.rcpt_tos)
    assert got == ["ada@acme.example.com", "bo@acme.example.com"]
