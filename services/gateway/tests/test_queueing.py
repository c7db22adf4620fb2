"""The seed's queuing endpoints: bodies, validation errors, routing."""

from __future__ import annotations

import pytest

from prs_shared.messaging.envelope import Envelope
from prs_shared.testing.fixtures import BrokerProbe, eventually

from .conftest import Gateway

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"workflow_action": "verify_deal"}, "deal_id"),
        ({"deal_id": "1", "workflow_action": "approve_everything"}, "workflow_action"),
        ({"deal_id": "1", "workflow_action": "verify_deal", "priority": "urgent"}, "priority"),
        ({"deal_id": "../etc", "workflow_action": "verify_deal"}, "deal_id"),
        ({"deal_id": "1", "workflow_action": "verify_deal", "extra": 1}, "extra"),
    ],
)
async def test_an_invalid_deal_body_is_422_naming_the_field(
    gateway: Gateway, body: dict[str, object], field: str
) -> None:
    response = await gateway.client.post(
        "/api/background-tasks/queue-deal-processing/", json=body, headers=gateway.auth()
    )
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert field in problem["detail"]
    assert any(e["field"] == field for e in problem["errors"])


async def test_a_body_that_is_not_json_is_422_not_500(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/api/background-tasks/queue-deal-processing/",
        content=b"{nope",
        headers={**gateway.auth(), "content-type": "application/json"},
    )
    assert response.status_code == 422


async def test_the_seed_deal_id_may_be_an_integer(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/api/background-tasks/queue-deal-processing/",
        json={"deal_id": 123, "workflow_action": "generate_invoice"},
        headers=gateway.auth(),
    )
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("notification_type", "queue"),
    [("password_reset", "auth"), ("payment_received", "notifications")],
)
async def test_notifications_go_to_the_auth_queue_for_passwords_and_notifications_otherwise(
    gateway: Gateway, broker: BrokerProbe, notification_type: str, queue: str
) -> None:
    response = await gateway.client.post(
        "/api/background-tasks/send-notification/",
        json={
            "notification_type": notification_type,
            "recipient_type": "user",
            "user_id": 123,
            "additional_data": {"days_until_expiry": 7},
        },
        headers=gateway.auth(),
    )
    assert response.status_code == 202, response.text
    assert response.json()["queue"] == queue
    messages = await eventually(
        lambda: broker.get_all(gateway.settings.namespace + queue), message="command queued"
    )
    envelope = Envelope.model_validate_json(messages[0].body)
    assert envelope.payload["user_id"] == "123"
    assert envelope.payload["additional_data"] == {"days_until_expiry": 7}


async def test_a_user_notification_without_user_id_is_422(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/api/background-tasks/send-notification/",
        json={"notification_type": "password_reset", "recipient_type": "user"},
        headers=gateway.auth(),
    )
    assert response.status_code == 422
    assert "user_id" in response.json()["detail"]


async def test_only_admins_may_mail_an_explicit_address(gateway: Gateway) -> None:
    operator = await gateway.make_key("operator", "org-a")
    body = {
        "notification_type": "audit_report_ready",
        "recipient_type": "email",
        "email": "cfo@example.com",
    }
    denied = await gateway.client.post(
        "/api/background-tasks/send-notification/", json=body, headers=gateway.auth(operator)
    )
    assert denied.status_code == 403
    allowed = await gateway.client.post(
        "/api/background-tasks/send-notification/", json=body, headers=gateway.auth()
    )
    assert allowed.status_code == 202
