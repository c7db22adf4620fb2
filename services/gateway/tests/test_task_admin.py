"""Listing, cancelling and retrying tasks; dead letters from archive to replay and purge."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.topology import Topology
from prs_shared.testing.fixtures import BrokerProbe, eventually
from prs_shared.testing.hosts import running_host
from prs_shared.testing.probe import EFFECT, MIGRATIONS, Effect, probe_registry
from prs_shared.testing.worker import ProbeSettings

from .conftest import Gateway

pytestmark = pytest.mark.asyncio

DEAL = {"deal_id": "D-9", "workflow_action": "calculate_commission"}


async def status_of(gateway: Gateway, task_id: str) -> dict[str, object]:
    r = await gateway.client.get(f"/api/background-tasks/{task_id}/status/", headers=gateway.auth())
    body: dict[str, object] = r.json()
    return body


async def wait_status(gateway: Gateway, task_id: str, wanted: str) -> dict[str, object]:
    async def check() -> dict[str, object] | None:
        body = await status_of(gateway, task_id)
        return body if body["status"] == wanted else None

    result: dict[str, object] = await eventually(check, timeout=30, message=f"{task_id} {wanted}")
    return result


async def test_tasks_are_listed_with_filters_and_paging(gateway: Gateway) -> None:
    for _ in range(3):
        await gateway.client.post(
            "/api/background-tasks/queue-deal-processing/", json=DEAL, headers=gateway.auth()
        )
    await gateway.client.post(
        "/api/automated-processes/trigger-commission-calculation/", headers=gateway.auth()
    )
    page = await gateway.client.get(
        "/api/background-tasks/",
        params={"task_type": "deal.process_workflow", "limit": 2},
        headers=gateway.auth(),
    )
    body = page.json()
    assert body["total"] == 3
    assert len(body["items"]) == 2
    queued = await gateway.client.get(
        "/api/background-tasks/",
        params={"status": "QUEUED", "queue": "business_processes"},
        headers=gateway.auth(),
    )
    assert queued.json()["total"] == 1
    future = await gateway.client.get(
        "/api/background-tasks/", params={"since": "2999-01-01T00:00:00Z"}, headers=gateway.auth()
    )
    assert future.json()["total"] == 0
    bad = await gateway.client.get(
        "/api/background-tasks/", params={"status": "WAITING"}, headers=gateway.auth()
    )
    assert bad.status_code == 422


async def test_a_cancelled_queued_task_is_skipped_by_the_worker_that_receives_it_later(
    gateway: Gateway, amqp_url: str, namespace: str, tmp_path: Path, broker: BrokerProbe
) -> None:
    # No worker runs yet: the task waits in its queue.
    queued = await gateway.client.post(
        "/api/background-tasks/queue-diagnostic/",
        json={"services": ["deal-workflow"]},
        headers=gateway.auth(),
    )
    task_id = queued.json()["tasks"]["deal-workflow"]["task_id"]
    cancel = await gateway.client.post(
        f"/api/background-tasks/{task_id}/cancel/", headers=gateway.auth()
    )
    assert cancel.status_code == 202
    assert cancel.json()["cancel_requested"] is True

    async def both_waiting() -> bool:
        return (await broker.queue(namespace + "workflow")).messages == 2

    await eventually(both_waiting, message="the task and its cancellation wait in the queue")
    probe = ProbeSettings(
        amqp_url=amqp_url,
        namespace=namespace,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/late.sqlite3",
        prefetch=1,  # one at a time, so the order of the queue is the order of handling
    )
    async with running_host(
        probe, handlers=probe_registry(), command_queues=("workflow",), migrations=MIGRATIONS
    ):
        final = await wait_status(gateway, task_id, "CANCELLED")
    assert final["successful"] is False
    again = await gateway.client.post(
        f"/api/background-tasks/{task_id}/cancel/", headers=gateway.auth()
    )
    assert again.status_code == 409


async def test_a_dead_lettered_task_is_archived_listed_inspected_replayed_and_purged(
    gateway: Gateway, amqp_url: str, namespace: str, tmp_path: Path
) -> None:
    topology = Topology(namespace=namespace)
    probe = ProbeSettings(
        amqp_url=amqp_url,
        namespace=namespace,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/probe.sqlite3",
    )
    message = Envelope(
        type=EFFECT.type,
        payload=Effect(key="dlq", permanent=True).model_dump(),
        task_id=uuid.uuid4(),
    )
    async with running_host(
        probe, handlers=probe_registry(), command_queues=("workflow",), migrations=MIGRATIONS
    ) as host:
        await Publisher(host.publisher._channel, topology).publish(message)
        await wait_status(gateway, str(message.task_id), "FAILED")

        async def archived() -> list[dict[str, object]]:
            r = await gateway.client.get("/api/dead-letters/", headers=gateway.auth())
            items: list[dict[str, object]] = r.json()["items"]
            return items

        [letter] = await eventually(archived, message="dead letter archived")
        assert letter["reason"] == "permanent_error"
        assert letter["task_id"] == str(message.task_id)
        assert letter["queue"] == topology.queue("workflow")
        detail = await gateway.client.get(
            f"/api/dead-letters/{letter['id']}", headers=gateway.auth()
        )
        assert detail.json()["body"]["payload"]["key"] == "dlq"
        assert detail.json()["headers"]["x-dead-letter-reason"] == "permanent_error"

        replay = await gateway.client.post(
            f"/api/dead-letters/{letter['id']}/replay", headers=gateway.auth()
        )
        assert replay.json() == {"replayed": 1}

        # The handler refuses again: the replay ran (attempt 1 again) and failed again.
        async def second_letter() -> bool:
            r = await gateway.client.get("/api/dead-letters/", headers=gateway.auth())
            return r.json()["total"] == 1 and r.json()["items"][0]["id"] != letter["id"]

        await eventually(second_letter, message="replayed message dead-lettered again")
        twice = await gateway.client.post(
            f"/api/dead-letters/{letter['id']}/replay", headers=gateway.auth()
        )
        assert twice.status_code == 409

    operator = await gateway.make_key("operator")
    denied = await gateway.client.delete("/api/dead-letters/", headers=gateway.auth(operator))
    assert denied.status_code == 403
    purged = await gateway.client.delete("/api/dead-letters/", headers=gateway.auth())
    assert purged.json() == {"purged": 2}


async def test_a_failed_task_is_retried_under_the_same_task_id(
    gateway: Gateway, amqp_url: str, namespace: str, tmp_path: Path
) -> None:
    queued = await gateway.client.post(
        "/api/background-tasks/queue-deal-processing/", json=DEAL, headers=gateway.auth()
    )
    task_id = queued.json()["task_id"]
    not_yet = await gateway.client.post(
        f"/api/background-tasks/{task_id}/retry/", headers=gateway.auth()
    )
    assert not_yet.status_code == 409
    probe = ProbeSettings(
        amqp_url=amqp_url,
        namespace=namespace,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/probe.sqlite3",
    )
    # The probe does not handle deal.process_workflow: the task dead-letters as unknown_type.
    async with running_host(
        probe, handlers=probe_registry(), command_queues=("workflow",), migrations=MIGRATIONS
    ):
        await wait_status(gateway, task_id, "DEAD_LETTERED")
        retried = await gateway.client.post(
            f"/api/background-tasks/{task_id}/retry/", headers=gateway.auth()
        )
        assert retried.status_code == 202
        assert (await status_of(gateway, task_id))["status"] in {
            "QUEUED",
            "STARTED",
            "DEAD_LETTERED",
        }
        final = await wait_status(gateway, task_id, "DEAD_LETTERED")
    assert "unknown_type" in str(final["error"])


async def test_queues_and_workers_views_show_the_seed_queues_and_live_workers(
    gateway: Gateway,
) -> None:
    queues = (
        await gateway.client.get("/api/background-tasks/queues/", headers=gateway.auth())
    ).json()
    names = {q["name"] for q in queues}
    assert {
        "workflow",
        "auth",
        "file_processing",
        "business_processes",
        "system",
        "reports",
        "monitoring",
        "maintenance",
    } <= names
    monitoring = next(q for q in queues if q["name"] == "monitoring")
    assert monitoring["consumers"] == 1

    async def live() -> list[dict[str, object]]:
        r = await gateway.client.get("/api/background-tasks/workers/", headers=gateway.auth())
        return [w for w in r.json() if w["alive"]]

    [worker] = await eventually(live, message="gateway heartbeat")
    assert worker["service"] == "gateway"
