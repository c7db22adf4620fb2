"""The gateway's housekeeping ticks become runs in the registry, shown by process-status."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest

from gateway.process_runs import run_task_id
from gateway.state import GatewayState
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.schedule import (
    FAILED_TASK_CLEANUP,
    SESSION_CLEANUP,
    SYSTEM_HEALTH_CHECK,
    TASK_MONITORING,
    ScheduleTick,
)
from prs_shared.testing.fixtures import eventually

from .conftest import Gateway

pytestmark = pytest.mark.asyncio

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def process(gateway: Gateway, name: str) -> dict[str, Any]:
    r = await gateway.client.get(
        "/api/automated-processes/process-status/",
        params={"process_name": name},
        headers=gateway.auth(),
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize(
    ("spec", "job", "queue", "summary_key"),
    [
        (FAILED_TASK_CLEANUP, "failed_task_cleanup", "maintenance", "dead_letters_removed"),
        (SESSION_CLEANUP, "system_cleanup", "maintenance", "inbox_rows_removed"),
        (TASK_MONITORING, "task_monitoring", "monitoring", "requeued"),
        (SYSTEM_HEALTH_CHECK, "health_monitoring", "monitoring", "status"),
    ],
)
async def test_a_housekeeping_tick_is_a_run_with_its_summary_and_duration(
    gateway: Gateway, spec: Any, job: str, queue: str, summary_key: str
) -> None:
    state: GatewayState = gateway.app.state.gateway
    tick = Envelope(
        type=spec.type, payload=ScheduleTick(job=job, scheduled_for=AT).model_dump(mode="json")
    )
    await state.host.publisher.publish(tick)

    async def succeeded() -> dict[str, Any] | None:
        found = await process(gateway, job)
        return found if found["success_count"] == 1 else None

    status = await eventually(succeeded, timeout=30, message=f"{job} run recorded")
    assert status["status"] == "SUCCEEDED"
    assert status["last_success"] is not None
    assert status["last_duration_ms"] is not None
    assert status["average_duration_ms"] is not None

    task = await gateway.client.get(
        f"/api/background-tasks/{run_task_id(str(tick.id))}/status/", headers=gateway.auth()
    )
    assert task.status_code == 200, task.text
    body = task.json()
    assert body["queue"] == queue
    assert summary_key in body["result"], body["result"]

    # The same tick again (a redelivery, a replay): answered by the inbox, still one run.
    await state.host.publisher.publish(tick)
    await asyncio.sleep(1)  # time for the copy to be delivered and answered
    again = await process(gateway, job)
    assert again["success_count"] == 1


async def test_a_tick_dead_lettered_by_any_service_is_a_failed_run_with_its_error(
    gateway: Gateway,
) -> None:
    state: GatewayState = gateway.app.state.gateway
    topology = state.host.topology
    tick = Envelope(
        type=SESSION_CLEANUP.type,
        payload=ScheduleTick(job="system_cleanup", scheduled_for=AT).model_dump(mode="json"),
    )
    events_queue = topology.events_queue("file-processor")
    await state.host.publisher.publish_raw(
        "",
        topology.dlq(events_queue),
        aio_pika.Message(
            tick.model_dump_json().encode(),
            message_id=str(tick.id),
            type=tick.type,
            headers={
                "x-dead-letter-reason": "retries_exhausted",
                "x-attempts": 4,
                "x-last-error": "OSError: [Errno 28] No space left on device",
            },
        ),
    )

    async def failed() -> dict[str, Any] | None:
        found = await process(gateway, "system_cleanup")
        return found if found["failure_count"] == 1 else None

    status = await eventually(failed, timeout=30, message="the failed run recorded")
    assert status["status"] == "DEAD_LETTERED"
    assert status["last_error"] == f"{events_queue}: OSError: [Errno 28] No space left on device"
    assert status["success_count"] == 0
    # The dead letter itself is archived too, to be replayed.
    listing = await gateway.client.get(
        "/api/dead-letters/", params={"queue": events_queue}, headers=gateway.auth()
    )
    assert listing.json()["total"] == 1, listing.text
    # Any other dead letter is no run of a process.
    other = await process(gateway, "failed_task_cleanup")
    assert other["failure_count"] == 0
