"""Webhooks through the gateway: a bad URL is a 422 naming the field; registered webhooks are
listed per organization, from the notifier's answers to the registration tasks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.state import GatewayState
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.messages import TaskLifecycle, TaskStatus
from prs_shared.testing.fixtures import eventually

from .conftest import Gateway

HOOK = {"event_types": ["deal.verified"], "secret": "s" * 32}


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/prs",
        "hooks.example.com/prs",
        "https:///prs-no-host",
        "javascript:alert(1)//x",
        "https://hooks.example.com/a b",
    ],
)
async def test_a_webhook_url_that_is_not_http_with_a_host_is_a_422_naming_the_field(
    gateway: Gateway, url: str
) -> None:
    response = await gateway.client.post(
        "/api/webhooks/",
        json={**HOOK, "url": url, "organization_id": "org-a"},
        headers=gateway.auth(),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["url"]
    listed = await gateway.client.get("/api/background-tasks/", headers=gateway.auth())
    assert listed.json()["total"] == 0  # nothing queued


async def _register(gateway: Gateway, key: str, url: str, *, active: bool = True) -> str:
    response = await gateway.client.post(
        "/api/webhooks/", json={**HOOK, "url": url, "active": active}, headers=gateway.auth(key)
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def _notifier_answers(
    gateway: Gateway, task_id: str, organization_id: str, url: str, active: bool = True
) -> None:
    """The notifier's task.succeeded for the registration, with the result its handler returns."""
    state: GatewayState = gateway.app.state.gateway
    result: dict[str, Any] = {
        "endpoint_id": str(uuid.uuid5(uuid.NAMESPACE_URL, organization_id + url)),
        "organization_id": organization_id,
        "url": url,
        "event_types": ["deal.verified"],
        "active": active,
        "created": True,
    }
    done = TaskLifecycle(
        task_id=uuid.UUID(task_id),
        task_type="webhook.register",
        status=TaskStatus.SUCCEEDED,
        queue=state.host.topology.queue("notifications"),
        service="notifier",
        worker="notifier:1",
        attempt=1,
        at=datetime.now(UTC),
        result=result,
    )
    await state.host.publisher.publish(
        Envelope(
            type="task.succeeded",
            payload=done.model_dump(mode="json"),
            task_id=uuid.UUID(task_id),
            organization_id=organization_id,
        )
    )

    async def succeeded() -> bool:
        r = await gateway.client.get(
            f"/api/background-tasks/{task_id}/status/", headers=gateway.auth()
        )
        return r.json()["status"] == "SUCCEEDED"

    await eventually(succeeded, message="the registration SUCCEEDED")


async def _listed(gateway: Gateway, key: str | None = None, **params: str) -> list[dict[str, Any]]:
    response = await gateway.client.get("/api/webhooks/", params=params, headers=gateway.auth(key))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    assert response.json()["total"] == len(items)
    return items


async def test_registered_webhooks_are_listed_for_their_own_organization_only(
    gateway: Gateway,
) -> None:
    a = await gateway.make_key("operator", "org-a")
    b = await gateway.make_key("operator", "org-b")
    url_a, url_b = "https://hooks.example.com/a", "https://hooks.example.com/b"
    pending = await _register(gateway, a, "https://hooks.example.com/not-yet")
    await _notifier_answers(gateway, await _register(gateway, a, url_a), "org-a", url_a)
    await _notifier_answers(gateway, await _register(gateway, b, url_b), "org-b", url_b)
    assert pending

    mine = await _listed(gateway, a)
    assert [h["url"] for h in mine] == [url_a]  # a registration not yet handled is not listed
    assert mine[0]["organization_id"] == "org-a"
    assert mine[0]["event_types"] == ["deal.verified"]
    assert mine[0]["active"] is True
    assert "secret" not in mine[0]
    assert [h["url"] for h in await _listed(gateway, b)] == [url_b]
    assert [h["organization_id"] for h in await _listed(gateway)] == ["org-a", "org-b"]
    assert [h["url"] for h in await _listed(gateway, organization_id="org-b")] == [url_b]

    refused = await gateway.client.get(
        "/api/webhooks/", params={"organization_id": "org-b"}, headers=gateway.auth(a)
    )
    assert refused.status_code == 403


async def test_registering_the_same_url_again_shows_its_latest_state(gateway: Gateway) -> None:
    a = await gateway.make_key("operator", "org-a")
    url = "https://hooks.example.com/a"
    await _notifier_answers(gateway, await _register(gateway, a, url), "org-a", url)
    again = await _register(gateway, a, url, active=False)
    await _notifier_answers(gateway, again, "org-a", url, active=False)
    listed = await _listed(gateway, a)
    assert len(listed) == 1
    assert listed[0]["active"] is False
    assert listed[0]["task_id"] == again
