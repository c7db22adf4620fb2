"""``recipient_type="operators"``: the system's incident and recovery emails go to the addresses
of ``PRS_OPERATOR_EMAILS``, for messages of no organization only."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from notifier.settings import NotifierSettings
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.notifications import SEND_NOTIFICATION
from prs_shared.testing.fixtures import final_lifecycle

OPERATORS = "ops@prs.example.com, oncall@prs.example.com,ops@prs.example.com"


def incident(org: str | None) -> Envelope:
    return Envelope(
        type=SEND_NOTIFICATION.type,
        organization_id=org,
        task_id=uuid.uuid4(),
        payload={
            "notification_type": "system_unhealthy",
            "recipient_type": "operators",
            "additional_data": {
                "status": "unhealthy",
                "previous_status": "healthy",
                "reasons": ["SMTP server unreachable"],
                "checked_at": "2026-12-06T12:05:00+00:00",
            },
        },
    )


def test_the_operator_addresses_are_read_once_each_and_checked() -> None:
    settings = NotifierSettings(operator_emails=OPERATORS)
    assert settings.operator_addresses() == ["ops@prs.example.com", "oncall@prs.example.com"]
    assert NotifierSettings().operator_addresses() == []
    with pytest.raises(ValueError, match="PRS_OPERATOR_EMAILS"):
        NotifierSettings(operator_emails="ops@prs.example.com, not-an-address")


async def test_each_operator_gets_the_incident_email_and_an_organization_cannot_reach_them(
    kit: Any, run_notifier: Any, publisher: Any, smtp_sink: Any, tap: Any
) -> None:
    events = await tap("task.#")
    async with run_notifier(operator_emails=OPERATORS):
        scoped = incident("org-1")
        await publisher.publish(scoped)
        await events.wait_for(lambda seen: final_lifecycle(seen, scoped.task_id) is not None)
        refused = final_lifecycle(events.seen, scoped.task_id)
        assert refused is not None
        assert refused.status.value == "FAILED"  # permanent: no retry
        assert "whole system" in (refused.error or "")

        system = incident(None)
        await publisher.publish(system)
        await events.wait_for(lambda seen: final_lifecycle(seen, system.task_id) is not None)
        done = final_lifecycle(events.seen, system.task_id)
        assert done is not None
        assert done.status.value == "SUCCEEDED", done.error

    assert sorted(r for m in smtp_sink.received for r in m.rcpt_tos) == [
        "oncall@prs.example.com",
        "ops@prs.example.com",
    ]
    message = smtp_sink.to("ops@prs.example.com")[0].message
    assert message["Subject"] == "PRS is unhealthy: SMTP server unreachable"
    assert message["X-PRS-Notification-Type"] == "system_unhealthy"
    assert "SMTP server unreachable" in kit.text_part(message)
    assert "<li>SMTP server unreachable</li>" in kit.html_part(message)


async def test_without_operator_addresses_nothing_is_sent_and_nothing_dead_lettered(
    run_notifier: Any, publisher: Any, smtp_sink: Any, tap: Any
) -> None:
    events = await tap("task.#")
    async with run_notifier():
        system = incident(None)
        await publisher.publish(system)
        await events.wait_for(lambda seen: final_lifecycle(seen, system.task_id) is not None)
    done = final_lifecycle(events.seen, system.task_id)
    assert done is not None
    assert done.status.value == "SUCCEEDED"
    assert smtp_sink.received == []
