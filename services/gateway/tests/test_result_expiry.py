"""A finished task past PRS_RESULT_RETENTION_SECONDS reads EXPIRED, its outcome kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gateway.models import Task
from gateway.state import GatewayState

from .conftest import Gateway

pytestmark = pytest.mark.asyncio


async def finished_task(gateway: Gateway, status: str, age: timedelta) -> str:
    state: GatewayState = gateway.app.state.gateway
    at = datetime.now(UTC) - age
    task_id = str(uuid.uuid4())
    async with state.host.sessions() as session, session.begin():
        session.add(
            Task(
                task_id=task_id,
                task_type="deal.process_workflow",
                queue="workflow",
                status=status,
                attempts=1,
                result={"verified": True} if status == "SUCCEEDED" else None,
                error="deal 9 is invoiced" if status == "FAILED" else None,
                queued_at=at,
                finished_at=at,
                updated_at=at,
            )
        )
    return task_id


async def status_of(gateway: Gateway, task_id: str) -> dict[str, object]:
    r = await gateway.client.get(f"/api/background-tasks/{task_id}/status/", headers=gateway.auth())
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


async def test_a_succeeded_task_past_retention_reads_expired_and_still_successful(
    gateway: Gateway,
) -> None:
    task_id = await finished_task(gateway, "SUCCEEDED", timedelta(hours=2))
    status = await status_of(gateway, task_id)
    assert status["status"] == "EXPIRED"
    assert status["successful"] is True
    assert status["result"] is None


async def test_a_failed_task_past_retention_reads_expired_unsuccessful_with_its_error(
    gateway: Gateway,
) -> None:
    task_id = await finished_task(gateway, "FAILED", timedelta(hours=2))
    status = await status_of(gateway, task_id)
    assert status["status"] == "EXPIRED"
    assert status["successful"] is False
    assert status["error"] == "deal 9 is invoiced"


async def test_a_result_within_retention_is_kept(gateway: Gateway) -> None:
    task_id = await finished_task(gateway, "SUCCEEDED", timedelta(minutes=30))
    status = await status_of(gateway, task_id)
    assert status["status"] == "SUCCEEDED"
    assert status["result"] == {"verified": True}


async def test_the_task_list_filters_on_the_status_a_task_reads(gateway: Gateway) -> None:
    expired = await finished_task(gateway, "SUCCEEDED", timedelta(hours=2))
    fresh = await finished_task(gateway, "SUCCEEDED", timedelta(minutes=30))

    async def listed(status: str) -> set[str]:
        r = await gateway.client.get(
            "/api/background-tasks/", params={"status": status}, headers=gateway.auth()
        )
        assert r.status_code == 200, r.text
        return {item["task_id"] for item in r.json()["items"]}

    assert await listed("EXPIRED") == {expired}
    assert await listed("SUCCEEDED") == {fresh}
