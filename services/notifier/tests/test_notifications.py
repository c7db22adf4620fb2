"""notification.send end to end: the real broker, a real SMTP server, SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

from notifier.ledger import FAILED, SENT
from notifier.rendering import mail_id
from prs_shared.messaging.envelope import Envelope, Priority
from prs_shared.messaging.messages import TaskLifecycle, TaskStatus
from prs_shared.messaging.notifications import NOTIFICATION_SENT, SEND_NOTIFICATION
from prs_shared.messaging.runtime import REASON_HEADER
from prs_shared.testing.fixtures import eventually


def send(
    queue: str | None = None, *, org: str | None = "org-1", **payload: Any
) -> tuple[Envelope, str | None]:
    envelope = Envelope(
        type=SEND_NOTIFICATION.type,
        organization_id=org,
        task_id=uuid.uuid4(),
        priority=Priority.HIGH,
        payload=payload,
    )
    return envelope, queue


def statuses(events: list[Envelope], task_id: uuid.UUID | None) -> list[TaskStatus]:
    return [
        TaskLifecycle.model_validate(e.payload).status
        for e in events
        if e.task_id == task_id and e.type.startswith("task.")
    ]


def finished(events: list[Envelope], task_id: uuid.UUID | None) -> TaskLifecycle | None:
    for e in events:
        if e.task_id == task_id and e.type in (
            "task.succeeded",
            "task.failed",
            "task.dead_lettered",
        ):
            return TaskLifecycle.model_validate(e.payload)
    return None


async def test_every_notification_type_reaches_its_recipients_with_the_organization_name(
    kit, run_notifier, database_url, publisher, smtp_sink, tap
) -> None:
    events = await tap("task.#", NOTIFICATION_SENT.type)
    cases = [
        (
            send(
                "auth",
                notification_type="password_reset",
                user_id="u-sales",
                additional_data={"reset_url": "https://prs.example.com/reset/abc"},
            ),
            ["sam@acme.example.com"],
        ),
        (
            send("auth", notification_type="password_created", user_id="u-admin"),
            ["ada@acme.example.com"],
        ),
        (
            send(
                "auth",
                notification_type="password_expiry_warning",
                user_id="u-verifier",
                additional_data={"expires_at": "2026-12-01T00:00:00+00:00"},
            ),
            ["vic@acme.example.com"],
        ),
        (
            send(
                notification_type="verification_approved",
                user_id="u-sales",
                deal_id="D-1",
                additional_data={"client_name": "Globex", "value": "1200.5", "currency": "EUR"},
            ),
            ["sam@acme.example.com"],
        ),
        (
            send(
                notification_type="verification_rejected",
                user_id="u-sales",
                deal_id="D-2",
                additional_data={"client_name": "Initech", "reasons": ["no invoice attached"]},
            ),
            ["sam@acme.example.com"],
        ),
        (
            send(
                notification_type="payment_received",
                user_id="u-sales",
                deal_id="D-3",
                additional_data={"client_name": "Umbrella", "amount": "300", "currency": "USD"},
            ),
            ["sam@acme.example.com"],
        ),
        (
            send(
                notification_type="deal_overdue",
                recipient_type="role",
                role="finance",
                deal_id="D-4",
                additional_data={
                    "client_name": "Hooli",
                    "outstanding": "99.999",
                    "currency": "USD",
                },
            ),
            ["fin@acme.example.com"],
        ),
        (
            send(
                notification_type="verification_reminder",
                recipient_type="role",
                role="verifier",
                additional_data={"deal_ids": ["D-5", "D-6"]},
            ),
            ["vic@acme.example.com", "bo@acme.example.com"],
        ),
        (
            # An address outside every organization: only a key without organization may.
            send(
                org=None,
                notification_type="audit_report_ready",
                recipient_type="email",
                email="auditor@partner.example.com",
                additional_data={"report_id": "rep-7", "report_type": "deals", "days": 30},
            ),
            ["auditor@partner.example.com"],
        ),
    ]
    async with run_notifier(database_url) as host:
        await kit.seed_directory(publisher, host)
        for envelope, queue in (case for case, _ in cases):
            await publisher.publish(envelope, queue=queue)
        await events.wait_for(
            lambda seen: all(finished(seen, env.task_id) for (env, _), _ in cases), timeout=30
        )
        await events.wait_for(
            lambda seen: len([e for e in seen if e.type == NOTIFICATION_SENT.type]) == 10
        )

    for (envelope, _), recipients in cases:
        outcome = finished(events.seen, envelope.task_id)
        assert outcome is not None
        assert outcome.status is TaskStatus.SUCCEEDED, outcome
        assert sorted(outcome.result["sent"]) == sorted(recipients)
    assert len(smtp_sink.received) == 10  # nine requests, the reminder to two verifiers
    for received in smtp_sink.received:
        assert len(received.rcpt_tos) == 1  # one email per person
        message = received.message
        assert message["From"] == "PRS <no-reply@prs.test>"
        assert message.get_content_type() == "multipart/alternative"
        if received.rcpt_tos != ["auditor@partner.example.com"]:
            assert "Acme Receivables" in kit.text_part(message)
            assert "Acme Receivables" in kit.html_part(message)

    by_subject = {r.message["Subject"]: r for r in smtp_sink.received}
    reset = by_subject["Reset your PRS password"]
    assert reset.rcpt_tos == ["sam@acme.example.com"]
    assert "https://prs.example.com/reset/abc" in kit.text_part(reset.message)
    assert "Hello Sam Seller" in kit.text_part(reset.message)
    warning = by_subject["Vic Verifier: your PRS password expires soon"]
    assert warning.rcpt_tos == ["vic@acme.example.com"]
    assert "2026-12-01" in kit.text_part(warning.message)
    subjects = {r.message["Subject"] for r in smtp_sink.received}
    assert "Deal verified: Globex" in subjects
    assert "Deal not verified: Initech" in subjects
    assert "Payment received: 300.00 USD from Umbrella" in subjects
    assert "Deal overdue: Hooli" in subjects
    assert "2 deal(s) waiting for verification in Acme Receivables" in subjects
    [report] = smtp_sink.to("auditor@partner.example.com")
    assert (
        "https://prs.example.com/api/automated-processes/reports/rep-7/download?format=html"
        in kit.text_part(report.message)
    )
    [rejected] = [r for r in smtp_sink.received if r.message["Subject"].startswith("Deal not")]
    assert "no invoice attached" in kit.html_part(rejected.message)
    [overdue] = smtp_sink.to("fin@acme.example.com")
    assert "100.00 USD" in kit.text_part(overdue.message)
    sent_events = events.of_type(NOTIFICATION_SENT.type)
    assert {e.payload["message_id"] for e in sent_events} == {
        r.message["Message-ID"] for r in smtp_sink.received
    }


async def test_unknown_inactive_and_foreign_users_fail_with_a_clear_reason(
    kit, run_notifier, publisher, smtp_sink, tap
) -> None:
    events = await tap("task.#")
    unknown, _ = send(notification_type="password_reset", user_id="u-nobody")
    inactive, _ = send(notification_type="password_reset", user_id="u-gone")
    foreign, _ = send(notification_type="password_reset", user_id="u-other")
    async with run_notifier() as host:
        await kit.seed_directory(publisher, host)
        for envelope in (unknown, inactive, foreign):
            await publisher.publish(envelope, queue="auth")
        await events.wait_for(
            lambda s: all(finished(s, e.task_id) for e in (unknown, inactive, foreign))
        )
    reasons = {}
    for envelope in (unknown, inactive, foreign):
        outcome = finished(events.seen, envelope.task_id)
        assert outcome is not None
        # An unknown user may be one whose user.created has not arrived yet: retried, then
        # dead-lettered (replayable). An inactive one is known to be inactive: failed at once.
        retried = TaskStatus.RETRYING in statuses(events.seen, envelope.task_id)
        assert retried is (envelope is not inactive)
        assert outcome.status is (
            TaskStatus.FAILED if envelope is inactive else TaskStatus.DEAD_LETTERED
        )
        reasons[envelope.id] = outcome.error or ""
    assert "unknown user 'u-nobody'" in reasons[unknown.id]
    assert "inactive" in reasons[inactive.id]
    # Another organization's user reads exactly like an unknown one: no existence leak.
    assert reasons[foreign.id].replace("u-other", "<id>") == reasons[unknown.id].replace(
        "u-nobody", "<id>"
    )
    assert smtp_sink.received == []


async def test_a_421_is_retried_and_the_email_delivered_once(
    kit, run_notifier, database_url, publisher, smtp_sink, tap
) -> None:
    events = await tap("task.#")
    # Three refusals outlast the two tries one delivery makes, so the platform's retry path (a
    # delay queue) takes over once before the server recovers.
    smtp_sink.handler.script = ["421 4.3.0 Try again later"] * 3
    envelope, queue = send("auth", notification_type="password_created", user_id="u-admin")
    async with run_notifier(database_url, smtp_retry_attempts=2) as host:
        await kit.seed_directory(publisher, host)
        await publisher.publish(envelope, queue=queue)
        await events.wait_for(lambda s: finished(s, envelope.task_id) is not None, timeout=30)
        status = await host.components.ledger.status(
            mail_id(str(envelope.id), "ada@acme.example.com")
        )
    seen = statuses(events.seen, envelope.task_id)
    assert seen.count(TaskStatus.RETRYING) == 1
    assert seen[-1] is TaskStatus.SUCCEEDED
    assert len(smtp_sink.received) == 1
    assert status == SENT


async def test_a_550_fails_at_once_is_dead_lettered_and_logged(
    kit, run_notifier, database_url, publisher, smtp_sink, tap, broker, topology
) -> None:
    events = await tap("task.#", "notification.failed")
    smtp_sink.handler.script = ["550 5.1.1 No such mailbox"]
    envelope, _ = send(notification_type="verification_approved", user_id="u-sales", deal_id="D-9")
    async with run_notifier(database_url) as host:
        await kit.seed_directory(publisher, host)
        await publisher.publish(envelope)
        await events.wait_for(
            lambda s: (
                finished(s, envelope.task_id) is not None
                and any(e.type == "notification.failed" for e in s)
            )
        )
        dead = await eventually(
            lambda: broker.get_all(topology.dlq(topology.queue("notifications"))),
            message="dead-lettered",
        )
        status = await host.components.ledger.status(
            mail_id(str(envelope.id), "sam@acme.example.com")
        )
    outcome = finished(events.seen, envelope.task_id)
    assert outcome is not None
    assert outcome.status is TaskStatus.FAILED
    assert "550" in (outcome.error or "")
    assert TaskStatus.RETRYING not in statuses(events.seen, envelope.task_id)
    assert dead[0].headers[REASON_HEADER] == "permanent_error"
    assert status == FAILED
    [failed] = events.of_type("notification.failed")
    assert failed.payload["recipients"] == ["sam@acme.example.com"]
    assert "550" in failed.payload["error"]
    assert smtp_sink.received == []


async def test_a_redelivered_message_sends_one_email(
    kit, run_notifier, database_url, publisher, smtp_sink, tap
) -> None:
    events = await tap("task.succeeded")
    envelope, queue = send("auth", notification_type="password_reset", user_id="u-sales")
    async with run_notifier(database_url) as host:
        await kit.seed_directory(publisher, host)
        await publisher.publish(envelope, queue=queue)
        await publisher.publish(envelope, queue=queue)
        await events.wait_for(lambda s: len(s) >= 2)
        await publisher.publish(envelope, queue=queue)
        await events.wait_for(lambda s: len(s) >= 3)
    assert len(smtp_sink.received) == 1


async def test_a_name_carrying_a_header_injection_is_refused_permanently(
    kit, run_notifier, publisher, smtp_sink, tap
) -> None:
    events = await tap("task.#")
    evil = kit.user(
        "u-evil", "eve@acme.example.com", "Eve\r\nBcc: victim@elsewhere.example.com", "salesperson"
    )
    envelope, queue = send("auth", notification_type="password_expiry_warning", user_id="u-evil")
    async with run_notifier() as host:
        await kit.seed_directory(publisher, host, users=[evil])
        await publisher.publish(envelope, queue=queue)
        await events.wait_for(lambda s: finished(s, envelope.task_id) is not None)
    outcome = finished(events.seen, envelope.task_id)
    assert outcome is not None
    assert outcome.status is TaskStatus.FAILED
    assert "linefeed or carriage return" in (outcome.error or "")
    assert smtp_sink.received == []
