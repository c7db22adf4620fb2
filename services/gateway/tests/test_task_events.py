"""A task's history: one row per step, written with each change of state, read per organization."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.models import Task
from gateway.registry import apply_lifecycle
from gateway.state import GatewayState
from prs_shared.messaging.envelope import Envelope, utcnow
from prs_shared.messaging.handlers import Item
from prs_shared.messaging.messages import (
    LIFECYCLE_STATUS_TYPES,
    TASK_OUTCOMES,
    TaskLifecycle,
    TaskOutcome,
    TaskOutcomes,
    TaskStatus,
)
from prs_shared.testing.fixtures import eventually

from .conftest import Gateway

pytestmark = pytest.mark.asyncio

S = TaskStatus
DEAL = {"deal_id": "D-7", "workflow_action": "calculate_commission"}


async def queue_deal(gateway: Gateway, key: str | None = None) -> str:
    response = await gateway.client.post(
        "/api/background-tasks/queue-deal-processing/", json=DEAL, headers=gateway.auth(key)
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def events_of(gateway: Gateway, task_id: str, key: str | None = None) -> httpx.Response:
    return await gateway.client.get(
        f"/api/background-tasks/{task_id}/events/", headers=gateway.auth(key)
    )


def told(task_id: str, status: TaskStatus, attempt: int, seconds: float, **extra: Any) -> Item[Any]:
    """A lifecycle event of the deal task as its worker would publish it."""
    event = TaskLifecycle(
        task_id=uuid.UUID(task_id),
        task_type="deal.process_workflow",
        status=status,
        queue="workflow",
        service="deal-workflow",
        worker=f"host:{attempt}",
        attempt=attempt,
        at=utcnow() + timedelta(seconds=seconds),
        **extra,
    )
    envelope = Envelope(
        type=LIFECYCLE_STATUS_TYPES[status], payload=event.model_dump(mode="json"), task_id=None
    )
    return Item(envelope, event)


async def fold(gateway: Gateway, items: list[Item[Any]]) -> None:
    """Apply a batch as the registry's consumer does: one transaction per batch."""
    state: GatewayState = gateway.app.state.gateway
    async with state.host.sessions() as session, session.begin():
        await apply_lifecycle(items, session, None)


async def test_a_finished_task_shows_queued_then_its_outcome_oldest_first(
    gateway: Gateway,
) -> None:
    response = await gateway.client.post(
        "/api/background-tasks/queue-diagnostic/",
        json={"services": ["gateway"]},
        headers=gateway.auth(),
    )
    task_id = response.json()["tasks"]["gateway"]["task_id"]

    async def finished() -> list[dict[str, Any]] | None:
        events: list[dict[str, Any]] = (await events_of(gateway, task_id)).json()["events"]
        return events if events and events[-1]["status"] == "SUCCEEDED" else None

    events = await eventually(finished, timeout=30, message="the history ends SUCCEEDED")
    first = events[0]
    assert first["status"] == "QUEUED"
    assert first["attempt"] == 0
    assert first["detail"] == {"queue": "monitoring", "by": "admin (PRS_ADMIN_API_KEY)"}
    assert events[-1]["detail"]["service"] == "gateway"
    assert events[-1]["worker"]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)


async def test_each_retry_is_kept_with_its_error_and_next_attempt_whatever_the_arrival_order(
    gateway: Gateway,
) -> None:
    task_id = await queue_deal(gateway)
    retry_at = utcnow() + timedelta(seconds=5)
    started_1 = told(task_id, S.STARTED, 1, 1)
    retrying_1 = told(task_id, S.RETRYING, 1, 2, error="TimeoutError: db", retry_at=retry_at)
    started_2 = told(task_id, S.STARTED, 2, 6)
    succeeded_2 = told(task_id, S.SUCCEEDED, 2, 7, duration_ms=12.5, result={"ok": True})

    # The second attempt is told first; the first attempt's retry no longer moves the task.
    await fold(gateway, [started_2, succeeded_2])
    await fold(gateway, [started_1, retrying_1])
    await fold(gateway, [started_1, retrying_1, started_2, succeeded_2])  # redelivered

    response = await events_of(gateway, task_id)
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert [(e["status"], e["attempt"]) for e in events] == [
        ("QUEUED", 0),
        ("STARTED", 1),
        ("RETRYING", 1),
        ("STARTED", 2),
        ("SUCCEEDED", 2),
    ]
    retry = events[2]
    assert retry["error"] == "TimeoutError: db"
    assert retry["retry_at"].replace("Z", "+00:00") == retry_at.isoformat()
    assert retry["worker"] == "host:1"
    assert events[4]["detail"]["duration_ms"] == 12.5
    status = await gateway.client.get(
        f"/api/background-tasks/{task_id}/status/", headers=gateway.auth()
    )
    assert status.json()["status"] == "SUCCEEDED"


async def test_a_retry_through_the_api_is_a_new_queued_step_naming_who_retried(
    gateway: Gateway,
) -> None:
    task_id = await queue_deal(gateway)
    await fold(gateway, [told(task_id, S.FAILED, 1, 0, error="ValueError: no deal")])

    retried = await gateway.client.post(
        f"/api/background-tasks/{task_id}/retry/", headers=gateway.auth()
    )

    assert retried.status_code == 202, retried.text
    events = (await events_of(gateway, task_id)).json()["events"]
    assert [e["status"] for e in events] == ["QUEUED", "FAILED", "QUEUED"]
    assert events[1]["error"] == "ValueError: no deal"
    assert events[2]["detail"]["how"] == "retried"
    assert events[2]["detail"]["by"] == "admin (PRS_ADMIN_API_KEY)"


async def test_another_organizations_key_gets_404_for_the_history(gateway: Gateway) -> None:
    ours = await gateway.make_key("operator", "org-a")
    task_id = await queue_deal(gateway, ours)

    theirs = await events_of(gateway, task_id, await gateway.make_key("viewer", "org-b"))
    mine = await events_of(gateway, task_id, await gateway.make_key("viewer", "org-a"))
    unknown = await events_of(gateway, str(uuid.uuid4()))
    malformed = await events_of(gateway, "not-a-task-id")

    assert theirs.status_code == 404
    assert mine.status_code == 200
    assert [e["status"] for e in mine.json()["events"]] == ["QUEUED"]
    assert unknown.status_code == 404
    assert malformed.status_code == 422
    assert "task_id" in malformed.text
    anonymous = await gateway.client.get(f"/api/background-tasks/{task_id}/events/")
    assert anonymous.status_code == 401


async def test_the_history_is_read_back_by_a_gateway_started_afterwards(gateway: Gateway) -> None:
    task_id = await queue_deal(gateway)
    await fold(gateway, [told(task_id, S.STARTED, 1, 1)])

    again = create_app(gateway.settings)
    async with LifespanManager(again, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            response = await client.get(
                f"/api/background-tasks/{task_id}/events/", headers=gateway.auth()
            )

    assert response.status_code == 200, response.text
    assert [e["status"] for e in response.json()["events"]] == ["QUEUED", "STARTED"]


def concluded(*outcomes: TaskOutcome) -> Item[Any]:
    """A worker's ``task.outcomes`` for a committed batch."""
    payload = TaskOutcomes(outcomes=list(outcomes))
    envelope = Envelope(type=TASK_OUTCOMES.type, payload=payload.model_dump(mode="json"))
    return Item(envelope, payload)


def outcome(task_id: str, status: TaskStatus, **extra: Any) -> TaskOutcome:
    return TaskOutcome(
        task_id=uuid.UUID(task_id),
        task_type="deal.process_workflow",
        status=status,
        queue="workflow",
        service="deal-workflow",
        worker="host:1",
        attempt=1,
        at=utcnow() + timedelta(seconds=1),
        event_id=uuid.uuid4(),
        correlation_id=uuid.uuid4(),
        causation_id=uuid.uuid4(),
        **extra,
    )


async def test_a_batchs_outcomes_are_folded_as_each_tasks_own_event_once(
    gateway: Gateway,
) -> None:
    done, cancelled = await queue_deal(gateway), await queue_deal(gateway)
    # A task another service queued: its row comes from the outcome, organization included.
    foreign = str(uuid.uuid4())
    batch = concluded(
        outcome(done, S.SUCCEEDED, duration_ms=3.5, result={"commission": "12.00"}),
        outcome(cancelled, S.CANCELLED),
        outcome(foreign, S.SUCCEEDED, duration_ms=1.0, organization_id="org-foreign"),
    )
    started = told(done, S.STARTED, 1, 0)
    await fold(gateway, [started, batch])
    await fold(gateway, [batch])  # redelivered

    status = await gateway.client.get(
        f"/api/background-tasks/{done}/status/", headers=gateway.auth()
    )
    assert status.json()["status"] == "SUCCEEDED"
    assert status.json()["result"] == {"commission": "12.00"}
    history = (await events_of(gateway, done)).json()["events"]
    assert [e["status"] for e in history] == ["QUEUED", "STARTED", "SUCCEEDED"]
    assert history[-1]["detail"]["duration_ms"] == 3.5
    other = await gateway.client.get(
        f"/api/background-tasks/{cancelled}/status/", headers=gateway.auth()
    )
    assert other.json()["status"] == "CANCELLED"
    state: GatewayState = gateway.app.state.gateway
    async with state.host.sessions() as session:
        row = await session.get(Task, foreign)
    assert row is not None
    assert (row.status, row.organization_id, row.task_type) == (
        "SUCCEEDED",
        "org-foreign",
        "deal.process_workflow",
    )
    assert row.correlation_id == str(batch.payload.outcomes[2].correlation_id)
