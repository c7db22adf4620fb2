"""``GET …/status/?wait=N`` holds the answer until the task has finished: the registry's commit
wakes the request, so a client learns of the outcome when it happens instead of polling."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import delete

from gateway.api.routes import tasks
from gateway.models import Task, TaskEvent

from .conftest import Gateway

pytestmark = pytest.mark.asyncio


async def _queued(gateway: Gateway, path: str, body: dict[str, object]) -> str:
    response = await gateway.client.post(path, json=body, headers=gateway.auth())
    assert response.status_code == 202, response.text
    answer = response.json()
    task_id: str = answer["tasks"]["gateway"]["task_id"] if "tasks" in answer else answer["task_id"]
    return task_id


async def test_a_held_request_answers_when_the_task_finishes_woken_by_the_registry(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Re-reads far apart: only the registry's wake-up can answer within the hold.
    monkeypatch.setattr(tasks, "RECHECK_SECONDS", 60.0)
    task_id = await _queued(
        gateway, "/api/background-tasks/queue-diagnostic/", {"services": ["gateway"]}
    )
    asked = time.monotonic()
    response = await gateway.client.get(
        f"/api/background-tasks/{task_id}/status/", params={"wait": 25}, headers=gateway.auth()
    )
    held = time.monotonic() - asked
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "SUCCEEDED", response.text
    assert held < 25, f"answered only when the hold ended ({held:.1f}s)"


async def test_a_task_that_does_not_finish_is_answered_as_it_is_when_the_hold_ends(
    gateway: Gateway,
) -> None:
    # Nothing consumes deal-workflow's queue here: the task stays QUEUED.
    task_id = await _queued(
        gateway,
        "/api/background-tasks/queue-deal-processing/",
        {"deal_id": "d-1", "workflow_action": "verify_deal", "organization_id": "org-a"},
    )
    asked = time.monotonic()
    response = await gateway.client.get(
        f"/api/background-tasks/{task_id}/status/", params={"wait": 1}, headers=gateway.auth()
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "QUEUED"
    assert time.monotonic() - asked >= 1.0

    # Another organization's key learns nothing, held or not.
    other = await gateway.make_key("viewer", "org-b")
    hidden = await gateway.client.get(
        f"/api/background-tasks/{task_id}/status/", params={"wait": 5}, headers=gateway.auth(other)
    )
    assert hidden.status_code == 404, hidden.text
    own = await gateway.make_key("viewer", "org-a")
    seen = await gateway.client.get(
        f"/api/background-tasks/{task_id}/status/", params={"wait": 0}, headers=gateway.auth(own)
    )
    assert seen.json()["status"] == "QUEUED"


@pytest.mark.parametrize("wait", ["31", "-1", "soon"])
async def test_a_hold_out_of_range_is_refused_naming_the_parameter(
    gateway: Gateway, wait: str
) -> None:
    task_id = await _queued(
        gateway, "/api/background-tasks/queue-diagnostic/", {"services": ["gateway"]}
    )
    response = await gateway.client.get(
        f"/api/background-tasks/{task_id}/status/", params={"wait": wait}, headers=gateway.auth()
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["query.wait"], response.text


async def test_a_task_deleted_during_the_hold_is_not_found(gateway: Gateway) -> None:
    task_id = await _queued(
        gateway,
        "/api/background-tasks/queue-deal-processing/",
        {"deal_id": "d-2", "workflow_action": "verify_deal"},
    )
    held = asyncio.ensure_future(
        gateway.client.get(
            f"/api/background-tasks/{task_id}/status/", params={"wait": 20}, headers=gateway.auth()
        )
    )
    await asyncio.sleep(0.3)
    async with gateway.app.state.gateway.host.sessions() as session, session.begin():
        await session.execute(delete(TaskEvent).where(TaskEvent.task_id == task_id))
        await session.execute(delete(Task).where(Task.task_id == task_id))
    response = await held
    assert response.status_code == 404, response.text
