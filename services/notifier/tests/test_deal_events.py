"""From a deal event published on RabbitMQ to the emails of the people it concerns."""

from __future__ import annotations

from typing import Any

from prs_shared.messaging import deals
from prs_shared.messaging.envelope import Envelope

DEAL = {
    "organization_id": "org-1",
    "client_name": "Globex",
    "value": "1200.00",
    "currency": "USD",
    "salesperson_id": "u-sales",
}


def event(type_: str, **payload: Any) -> Envelope:
    return Envelope(type=type_, organization_id="org-1", payload=payload)


async def test_deal_events_email_the_people_they_concern(
    kit, run_notifier, publisher, smtp_sink
) -> None:
    published = [
        event(deals.DEAL_VERIFIED.type, deal_id="D-1", checks=["amount"], **DEAL),
        event(
            deals.DEAL_REJECTED.type,
            deal_id="D-2",
            reasons=["attachment unreadable"],
            manual_review=True,
            **DEAL,
        ),
        event(
            deals.PAYMENT_STATUS_CHANGED.type,
            deal_id="D-3",
            previous="unpaid",
            current="partially_paid",
            paid_total="200.00",
            last_payment_amount="200.00",
            **DEAL,
        ),
        # Not a payment: nobody is emailed.
        event(
            deals.PAYMENT_STATUS_CHANGED.type,
            deal_id="D-3",
            previous="partially_paid",
            current="overdue",
            paid_total="200.00",
            **DEAL,
        ),
        event(
            deals.DEAL_OVERDUE.type,
            deal_id="D-4",
            due_date="2026-11-01",
            outstanding="1000.00",
            period="2026-11",
            **DEAL,
        ),
        event(
            deals.VERIFICATION_REMINDER_DUE.type,
            organization_id="org-1",
            deal_ids=["D-5", "D-6"],
            oldest_pending_since="2026-11-25T08:00:00+00:00",
            day="2026-11-28",
        ),
        event(
            deals.AUDIT_REPORT_GENERATED.type,
            report_id="rep-1",
            organization_id="org-1",
            report_type="comprehensive",
            days=30,
            files={"html": "reports/rep-1.html"},
            requested_by="u-admin",
        ),
    ]
    expected = {
        ("Deal verified: Globex", "sam@acme.example.com"),
        ("Deal not verified: Globex", "sam@acme.example.com"),
        ("Deal not verified: Globex", "vic@acme.example.com"),
        ("Deal not verified: Globex", "bo@acme.example.com"),
        ("Payment received: 200.00 USD from Globex", "sam@acme.example.com"),
        ("Deal overdue: Globex", "sam@acme.example.com"),
        ("Deal overdue: Globex", "fin@acme.example.com"),
        ("2 deal(s) waiting for verification in Acme Receivables", "ada@acme.example.com"),
        ("2 deal(s) waiting for verification in Acme Receivables", "vic@acme.example.com"),
        ("2 deal(s) waiting for verification in Acme Receivables", "bo@acme.example.com"),
        ("Your comprehensive audit report is ready", "ada@acme.example.com"),
    }
    async with run_notifier() as host:
        await kit.seed_directory(publisher, host)
        for envelope in published:
            await publisher.publish(envelope)

        async def all_sent() -> bool:
            return len(smtp_sink.received) >= len(expected)

        await kit.eventually(all_sent, timeout=30, message="emails for every deal event")
        # Redelivering an event adds no email: its inbox record holds, so no second request.
        await publisher.publish(published[0])
        await publisher.publish(published[5])
        await kit.settle()

    got = {(r.message["Subject"], r.rcpt_tos[0]) for r in smtp_sink.received}
    assert got == expected
    assert len(smtp_sink.received) == len(expected)
    [report] = [r for r in smtp_sink.received if "audit report" in r.message["Subject"]]
    assert (
        "https://prs.example.com/api/automated-processes/reports/rep-1/download?format=html"
        in kit.html_part(report.message)
    )
    [payment] = [r for r in smtp_sink.received if r.message["Subject"].startswith("Payment")]
    assert "Paid so far: 200.00 USD of 1,200.00" in kit.text_part(payment.message)
    # Correlation: each email's request was caused by its event.
    assert all(r.message["Message-ID"].endswith("@prs.test>") for r in smtp_sink.received)
