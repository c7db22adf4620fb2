"""Task status through the gateway: queue the diagnostic task, follow it to SUCCEEDED."""

from __future__ import annotations

import uuid

import pytest

from prs_shared.testing.fixtures import eventually

from .conftest import Gateway

pytestmark = pytest.mark.asyncio


async def test_the_diagnostic_task_is_answered_by_the_gateway_and_reported_succeeded(
    gateway: Gateway,
) -> None:
    response = await gateway.client.post(
        "/api/background-tasks/queue-diagnostic/",
        json={"services": ["gateway"], "note": "hello"},
        headers=gateway.auth(),
    )
    assert response.status_code == 202, response.text
    queued = response.json()["tasks"]["gateway"]
    assert queued["status"] == "QUEUED"

    async def finished() -> dict[str, object] | None:
        r = await gateway.client.get(queued["status_url"], headers=gateway.auth())
        body: dict[str, object] = r.json()
        return body if body["status"] == "SUCCEEDED" else None

    status = await eventually(finished, message="diagnostic task SUCCEEDED")
    assert status["successful"] is True
    result = status["result"]
    assert isinstance(result, dict)
    assert result["service"] == "gateway"
    assert result["note"] == "hello"
    assert status["attempts"] == 1
    assert status["queue"] == "monitoring"
    assert status["priority"] == "high"
    assert status["queued_at"]
    assert status["started_at"]
    assert status["finished_at"]


async def test_an_unknown_task_id_is_404_not_pending(gateway: Gateway) -> None:
    response = await gateway.client.get(
        f"/api/background-tasks/{uuid.uuid4()}/status/", headers=gateway.auth()
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Task not found"


async def test_status_needs_an_api_key(gateway: Gateway) -> None:
    url = f"/api/background-tasks/{uuid.uuid4()}/status/"
    assert (await gateway.client.get(url)).status_code == 401
    wrong = await gateway.client.get(url, headers=gateway.auth("not-a-key"))
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"


async def test_health_readiness_and_metrics_answer(gateway: Gateway) -> None:
    assert (await gateway.client.get("/healthz")).json() == {"status": "ok"}
    ready = await gateway.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    metrics = await gateway.client.get("/metrics")
    assert "prs_tasks_total" in metrics.text
