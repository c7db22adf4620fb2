"""Task monitoring: stuck tasks found from a tick "an hour later", flagged, and requeued when their
worker died — once, and no more often than the cap allows; a task that moves on loses its flag."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from gateway.models import ServiceHeartbeat, Task, TaskEvent
from gateway.state import GatewayState
from gateway.stuck_tasks import TaskMonitor, per_type_limit, uniform_limit
from prs_shared.db.tables import inbox
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.schedule import TASK_MONITORING, ScheduleTick
from prs_shared.messaging.time_limits import TimeLimit, TimeLimits
from prs_shared.service import ServiceHost
from prs_shared.testing.fixtures import BrokerProbe, eventually
from prs_shared.testing.hosts import running_host
from prs_shared.testing.probe import EFFECT, MIGRATIONS, Effect, effects, probe_registry
from prs_shared.testing.worker import ProbeSettings

from .conftest import Gateway

REPO = Path(__file__).resolve().parents[3]
LATER = timedelta(hours=1)
"""How far ahead the ticks are: past every threshold of the default settings."""
DEAL = {"deal_id": "D-7", "workflow_action": "calculate_commission"}


def state_of(gateway: Gateway) -> GatewayState:
    state: GatewayState = gateway.app.state.gateway
    return state


async def monitor(gateway: Gateway, at: datetime) -> dict[str, Any]:
    """Send a task_monitoring tick for ``at`` through the broker; the gateway's summary of it."""
    state = state_of(gateway)
    tick = Envelope(
        type=TASK_MONITORING.type,
        payload=ScheduleTick(job="task_monitoring", scheduled_for=at).model_dump(mode="json"),
    )
    await state.host.publisher.publish(tick)

    async def handled() -> dict[str, Any] | None:
        async with state.host.sessions() as session:
            result: dict[str, Any] | None = await session.scalar(
                select(inbox.c.result).where(inbox.c.message_id == str(tick.id))
            )
        return result

    summary: dict[str, Any] = await eventually(handled, timeout=30, message="tick handled")
    return summary


async def status_of(gateway: Gateway, task_id: str, key: str | None = None) -> dict[str, Any]:
    r = await gateway.client.get(
        f"/api/background-tasks/{task_id}/status/", headers=gateway.auth(key)
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def wait_status(gateway: Gateway, task_id: str, wanted: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        r = await gateway.client.get(
            f"/api/background-tasks/{task_id}/status/", headers=gateway.auth()
        )
        # 404 until the registry has folded the first event of a task it did not queue.
        body: dict[str, Any] = r.json()
        return body if r.status_code == 200 and body["status"] == wanted else None

    result: dict[str, Any] = await eventually(check, timeout=30, message=f"{task_id} {wanted}")
    return result


async def stalled_gauge(gateway: Gateway) -> dict[str, float]:
    response = await gateway.client.get("/metrics")
    assert response.status_code == 200
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "prs_stalled_tasks"
    }


def started_on(worker: str, key: str, *, requeues: int = 0) -> Task:
    """A test.effect task the registry last saw STARTED on ``worker``, five minutes ago."""
    now = datetime.now(UTC)
    return Task(
        task_id=str(uuid.uuid4()),
        task_type=EFFECT.type,
        queue="workflow",
        status="STARTED",
        attempts=1,
        worker=worker,
        service="probe",
        payload=Effect(key=key).model_dump(mode="json"),
        message_id=str(uuid.uuid4()),
        correlation_id=str(uuid.uuid4()),
        queued_at=now - timedelta(minutes=6),
        started_at=now - timedelta(minutes=5),
        updated_at=now - timedelta(minutes=5),
        stalled_requeues=requeues,
    )


async def effect_count(worker: ServiceHost, key: str) -> int:
    async with worker.sessions() as session:
        n = await session.scalar(select(func.count()).where(effects.c.key == key))
    return int(n or 0)


def probe_settings(amqp_url: str, namespace: str, tmp_path: Path) -> ProbeSettings:
    return ProbeSettings(
        amqp_url=amqp_url,
        namespace=namespace,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/probe.sqlite3",
        metrics_port=0,
    )


async def test_a_task_queued_where_nobody_consumes_is_flagged_not_requeued_and_loses_the_flag_once_it_moves_on(
    gateway: Gateway, amqp_url: str, namespace: str, tmp_path: Path, broker: BrokerProbe
) -> None:
    org_a = await gateway.make_key("operator", "org-a")
    org_b = await gateway.make_key("operator", "org-b")
    queued = await gateway.client.post(
        "/api/background-tasks/queue-deal-processing/", json=DEAL, headers=gateway.auth(org_a)
    )
    assert queued.status_code == 202, queued.text
    task_id = queued.json()["task_id"]

    async def waiting() -> bool:
        return (await broker.queue(namespace + "workflow")).messages == 1

    await eventually(waiting, message="the command waits in workflow, which nobody consumes")
    before = await status_of(gateway, task_id)

    # Now: the task is young, nothing is stuck.
    assert (await monitor(gateway, datetime.now(UTC)))["no_consumer"] == 0
    summary = await monitor(gateway, datetime.now(UTC) + LATER)
    assert summary["no_consumer"] == 1
    assert summary["requeued"] == 0
    assert summary["consumers_known"] is True
    assert summary["stalled"] == [task_id]

    flagged = await status_of(gateway, task_id, org_a)
    assert flagged["status"] == "QUEUED"
    assert flagged["stalled_reason"] == "no_consumer"
    assert flagged["stalled_at"] is not None
    assert flagged["stalled_requeues"] == 0
    # Not requeued: the same command, and still one message in the queue.
    assert (await broker.queue(namespace + "workflow")).messages == 1
    assert flagged["queued_at"] == before["queued_at"]
    assert (await stalled_gauge(gateway))["no_consumer"] == 1

    # Another organization sees nothing of it; its owner finds it among the stalled.
    other = await gateway.client.get(
        f"/api/background-tasks/{task_id}/status/", headers=gateway.auth(org_b)
    )
    assert other.status_code == 404
    for key, total in ((org_b, 0), (org_a, 1)):
        page = await gateway.client.get(
            "/api/background-tasks/", params={"stalled": "true"}, headers=gateway.auth(key)
        )
        assert page.json()["total"] == total

    # A worker on workflow takes it (the probe has no handler for it: it dead-letters).
    async with running_host(
        probe_settings(amqp_url, namespace, tmp_path),
        handlers=probe_registry(),
        command_queues=("workflow",),
        migrations=MIGRATIONS,
    ):
        moved = await wait_status(gateway, task_id, "DEAD_LETTERED")
    assert moved["stalled_at"] is None
    assert moved["stalled_reason"] is None
    assert (await stalled_gauge(gateway))["no_consumer"] == 0


async def test_a_task_started_on_a_dead_worker_is_requeued_under_its_message_id_and_has_its_effect_once(
    gateway: Gateway, amqp_url: str, namespace: str, tmp_path: Path
) -> None:
    state = state_of(gateway)
    async with running_host(
        probe_settings(amqp_url, namespace, tmp_path),
        handlers=probe_registry(),
        command_queues=("workflow",),
        migrations=MIGRATIONS,
    ) as worker:
        # 1. The command was lost with its worker (no heartbeat row at all).
        lost = started_on("probe:vanished", "lost")
        # 2. The original did run, but the registry never heard of its outcome; its worker's
        #    heartbeats stopped ten minutes ago.
        ran = started_on("probe:silent", "ran")
        ran_id = uuid.UUID(ran.message_id or "")
        await state.host.publisher.publish(
            Envelope(
                id=ran_id,
                type=EFFECT.type,
                task_id=uuid.UUID(ran.task_id),
                payload=ran.payload or {},
                correlation_id=uuid.UUID(ran.correlation_id or ""),
            )
        )
        await wait_status(gateway, ran.task_id, "SUCCEEDED")
        assert await effect_count(worker, "ran") == 1
        now = datetime.now(UTC)
        async with state.host.sessions() as session, session.begin():
            session.add(lost)
            await session.execute(update(Task).where(Task.task_id == ran.task_id).values(
                status="STARTED", worker="probe:silent", started_at=ran.started_at,
                finished_at=None, result=None, message_id=ran.message_id, attempts=1,
                payload=ran.payload, queue="workflow",
            ))  # fmt: skip
            session.add(
                ServiceHeartbeat(
                    worker="probe:silent",
                    service="probe",
                    started_at=now - timedelta(hours=1),
                    last_seen=now - timedelta(minutes=10),
                )
            )

        summary = await monitor(gateway, now + timedelta(minutes=2))
        assert summary["dead_worker"] == 2
        assert summary["requeued"] == 2
        assert sorted(summary["requeued_tasks"]) == sorted([lost.task_id, ran.task_id])

        for task, key in ((lost, "lost"), (ran, "ran")):
            done = await wait_status(gateway, task.task_id, "SUCCEEDED")
            assert done["successful"] is True
            assert done["result"]["key"] == key
            # It moved on: the flag is gone, the requeue is counted.
            assert done["stalled_at"] is None
            assert done["stalled_requeues"] == 1
        # Once each: the lost command ran now; the one that had run was answered by the inbox.
        assert await effect_count(worker, "lost") == 1
        assert await effect_count(worker, "ran") == 1

    async with state.host.sessions() as session:
        row = await session.get(Task, ran.task_id)
        assert row is not None
        assert row.message_id == str(ran_id)
        requeues = (
            await session.execute(
                select(TaskEvent.detail).where(TaskEvent.task_id.in_([lost.task_id, ran.task_id]))
            )
        ).scalars()
        stalled = [d for d in requeues if d and d.get("how") == "stalled"]
    assert len(stalled) == 2
    assert {d["worker"] for d in stalled} == {"probe:vanished", "probe:silent"}
    assert {d["by"] for d in stalled} == {"task_monitoring"}


async def test_the_requeue_cap_holds_and_a_long_task_on_a_live_worker_is_flagged_only(
    gateway: Gateway,
) -> None:
    state = state_of(gateway)
    capped = started_on("probe:vanished", "capped", requeues=2)  # PRS_STALLED_REQUEUE_LIMIT
    long = started_on("probe:alive", "long")
    young = started_on("probe:vanished", "young")
    at = datetime.now(UTC) + LATER
    young.started_at = at - timedelta(seconds=30)  # within the heartbeat window
    async with state.host.sessions() as session, session.begin():
        session.add_all([capped, long, young])
        session.add(
            ServiceHeartbeat(
                worker="probe:alive", service="probe", started_at=at - LATER, last_seen=at
            )
        )

    summary = await monitor(gateway, at)
    assert summary["dead_worker"] == 1
    assert summary["time_limit"] == 1
    assert summary["requeued"] == 0
    assert summary["not_requeued"] == 1

    kept = await status_of(gateway, capped.task_id)
    assert kept["status"] == "STARTED"
    assert kept["stalled_reason"] == "dead_worker"
    assert kept["stalled_requeues"] == 2
    running = await status_of(gateway, long.task_id)
    assert running["status"] == "STARTED"
    assert running["stalled_reason"] == "time_limit"
    assert (await status_of(gateway, young.task_id))["stalled_at"] is None
    async with state.host.sessions() as session:
        row = await session.get(Task, capped.task_id)
        assert row is not None
        assert row.message_id == capped.message_id
    gauge = await stalled_gauge(gateway)
    assert gauge["dead_worker"] == 1
    assert gauge["time_limit"] == 1
    # The console's task page says so too.
    login = await gateway.client.post("/console/login", data={"api_key": gateway.admin_key})
    assert login.status_code == 303
    page = await gateway.client.get(f"/console/tasks/{capped.task_id}")
    assert 'data-stalled="dead_worker"' in page.text
    assert "requeued by task monitoring: 2" in page.text
    calm = await gateway.client.get(f"/console/tasks/{young.task_id}")
    assert "data-stalled" not in calm.text


class _NoBroker:
    async def __call__(self) -> Mapping[str, int]:
        raise ConnectionError("broker away")


async def test_without_the_brokers_count_no_task_is_said_to_lack_a_consumer(
    gateway: Gateway,
) -> None:
    state = state_of(gateway)
    queued = await gateway.client.post(
        "/api/background-tasks/queue-deal-processing/", json=DEAL, headers=gateway.auth()
    )
    task_id = queued.json()["task_id"]
    blind = TaskMonitor(
        _NoBroker(),
        queued_after=timedelta(minutes=10),
        time_limit=uniform_limit(3600),
        heartbeat_stale=timedelta(seconds=60),
        requeue_limit=2,
    )
    async with state.host.sessions() as session, session.begin():
        ctx = HandlerContext(
            envelope=Envelope(type=TASK_MONITORING.type),
            session=session,
            service="gateway",
            worker="test",
            attempt=1,
            queue="gateway.events",
        )
        summary = await blind.run(ctx, datetime.now(UTC) + LATER)
    assert summary["consumers_known"] is False
    assert summary["no_consumer"] == 0
    assert (await status_of(gateway, task_id))["stalled_at"] is None


def test_an_alert_rule_fires_on_stalled_tasks() -> None:
    rules = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())
    alert = next(
        rule
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "PrsStalledTasks"
    )
    assert "prs_stalled_tasks" in alert["expr"]
    assert "max by (reason)" in alert["expr"]


def test_a_task_counts_as_stuck_at_twice_its_types_hard_time_limit() -> None:
    limits = TimeLimits(TimeLimit(0, 0), {"file.process": TimeLimit(100, 150)})
    limit = per_type_limit(limits, fallback_seconds=3600)

    assert limit("file.process") == timedelta(seconds=300)
    # Declared in the catalog: deal.process_workflow's hard limit.
    declared = limits.for_type("deal.process_workflow").hard
    assert declared > 0
    assert limit("deal.process_workflow") == timedelta(seconds=2 * declared)
    # No hard limit anywhere: PRS_STALLED_AFTER_SECONDS.
    assert limit("not.a.catalog.type") == timedelta(seconds=3600)
