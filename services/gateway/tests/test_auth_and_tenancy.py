"""Keys, roles and organizations: who may do what, and what others' resources look like."""

from __future__ import annotations

import pytest

from prs_shared.testing.fixtures import BrokerProbe

from .conftest import Gateway

pytestmark = pytest.mark.asyncio

DEAL = {"deal_id": "D-1", "workflow_action": "verify_deal", "priority": "high"}


async def test_every_api_call_needs_a_known_bearer_key(gateway: Gateway) -> None:
    for method, url in [
        ("GET", "/api/background-tasks/"),
        ("POST", "/api/background-tasks/queue-deal-processing/"),
        ("GET", "/api/automated-processes/system-health/"),
        ("GET", "/api/dead-letters/"),
        ("GET", "/api/keys/"),
    ]:
        response = await gateway.client.request(method, url, json=DEAL)
        assert response.status_code == 401, (method, url)
        assert response.json()["status"] == 401
        bad = await gateway.client.request(
            method, url, json=DEAL, headers={"Authorization": "Basic Zm9vOmJhcg=="}
        )
        assert bad.status_code == 401


async def test_a_viewer_may_read_but_not_queue_and_an_operator_may_not_manage_keys(
    gateway: Gateway,
) -> None:
    viewer = await gateway.make_key("viewer", "org-a")
    queued = await gateway.client.post(
        "/api/background-tasks/queue-deal-processing/", json=DEAL, headers=gateway.auth(viewer)
    )
    assert queued.status_code == 403
    assert "operator" in queued.json()["detail"]
    assert (
        await gateway.client.get("/api/background-tasks/", headers=gateway.auth(viewer))
    ).status_code == 200
    operator = await gateway.make_key("operator", "org-a")
    assert (
        await gateway.client.get("/api/keys/", headers=gateway.auth(operator))
    ).status_code == 403
    purge = await gateway.client.delete("/api/dead-letters/", headers=gateway.auth(operator))
    assert purge.status_code == 403


async def test_a_task_of_another_organization_is_404(gateway: Gateway) -> None:
    a = await gateway.make_key("service", "org-a")
    b = await gateway.make_key("service", "org-b")
    queued = await gateway.client.post(
        "/api/background-tasks/queue-deal-processing/", json=DEAL, headers=gateway.auth(a)
    )
    assert queued.status_code == 202
    url = queued.json()["status_url"]
    mine = await gateway.client.get(url, headers=gateway.auth(a))
    assert mine.status_code == 200
    assert mine.json()["organization_id"] == "org-a"
    theirs = await gateway.client.get(url, headers=gateway.auth(b))
    assert theirs.status_code == 404
    listed = await gateway.client.get("/api/background-tasks/", headers=gateway.auth(b))
    assert listed.json()["total"] == 0


async def test_the_organization_comes_from_the_key_not_the_body(gateway: Gateway) -> None:
    a = await gateway.make_key("operator", "org-a")
    spoof = await gateway.client.post(
        "/api/background-tasks/queue-deal-processing/",
        json={**DEAL, "organization_id": "org-b"},
        headers=gateway.auth(a),
    )
    assert spoof.status_code == 403
    admin = await gateway.client.post(
        "/api/background-tasks/queue-deal-processing/",
        json={**DEAL, "organization_id": "org-b"},
        headers=gateway.auth(),
    )
    assert admin.status_code == 202
    status = await gateway.client.get(admin.json()["status_url"], headers=gateway.auth())
    assert status.json()["organization_id"] == "org-b"


async def test_a_revoked_key_stops_working(gateway: Gateway) -> None:
    key = await gateway.make_key("viewer")
    keys = (await gateway.client.get("/api/keys/", headers=gateway.auth())).json()
    key_id = next(k["id"] for k in keys if k["role"] == "viewer")
    assert (
        await gateway.client.get("/api/background-tasks/", headers=gateway.auth(key))
    ).status_code == 200
    revoked = await gateway.client.delete(f"/api/keys/{key_id}", headers=gateway.auth())
    assert revoked.json()["revoked_at"] is not None
    assert (
        await gateway.client.get("/api/background-tasks/", headers=gateway.auth(key))
    ).status_code == 401
    assert "key" not in keys[0]  # values are never listed


async def test_a_queued_deal_task_is_durable_and_its_command_is_on_the_workflow_queue(
    gateway: Gateway, broker: BrokerProbe
) -> None:
    response = await gateway.client.post(
        "/api/background-tasks/queue-deal-processing/", json=DEAL, headers=gateway.auth()
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "QUEUED"
    assert body["queue"] == "workflow"
    from prs_shared.testing.fixtures import eventually

    queue = gateway.settings.namespace + "workflow"
    messages = await eventually(lambda: broker.get_all(queue), message="command on workflow")
    from prs_shared.messaging.envelope import Envelope

    envelope = Envelope.model_validate_json(messages[0].body)
    assert envelope.type == "deal.process_workflow"
    assert str(envelope.task_id) == body["task_id"]
    assert envelope.payload["workflow_action"] == "verify_deal"
    assert messages[0].priority == 3
