"""Retention: the scheduler's cleanup ticks delete what is past retention and nothing younger;
the admin endpoint's dry run tells exactly that and deletes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.cleanup import Housekeeping
from gateway.models import (
    Base,
    DeadLetter,
    HealthSnapshot,
    IdempotencyKey,
    Report,
    SentNotification,
    ServiceHeartbeat,
    Task,
    TaskEvent,
)
from gateway.state import GatewayState
from prs_shared.messaging.catalog import MessageSpec
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.schedule import FAILED_TASK_CLEANUP, SESSION_CLEANUP, ScheduleTick
from prs_shared.messaging.webhooks import REGISTER_WEBHOOK
from prs_shared.testing.fixtures import eventually

from .conftest import Gateway

pytestmark = pytest.mark.asyncio

DAY = timedelta(days=1)
OLD = 31 * DAY  # past the default 30 days of PRS_RETENTION_FAILED_DAYS / _TASKS_DAYS
YOUNG = 29 * DAY


def task(task_id: str, status: str, age: timedelta, now: datetime) -> Task:
    at = now - age
    return Task(
        task_id=task_id,
        task_type="deal.process_workflow",
        queue="workflow",
        status=status,
        attempts=1,
        payload={"deal_id": "42"},
        result={"ok": True} if status == "SUCCEEDED" else None,
        error="boom" if status in ("FAILED", "DEAD_LETTERED") else None,
        queued_at=at,
        finished_at=at,
        updated_at=at,
    )


def webhook_registration(task_id: str, now: datetime) -> Task:
    registered = task(task_id, "SUCCEEDED", OLD, now)
    registered.task_type = REGISTER_WEBHOOK.type
    return registered


def history(task_id: str, now: datetime) -> TaskEvent:
    return TaskEvent(
        event_id=str(uuid.uuid4()), task_id=task_id, at=now, status="QUEUED", attempt=0
    )


def dead_letter(id_: str, age: timedelta, now: datetime, *, replayed: bool) -> DeadLetter:
    return DeadLetter(
        id=id_,
        queue="workflow",
        reason="retries_exhausted",
        attempts=4,
        headers={},
        body=b'{"id": "x"}',
        dead_lettered_at=now - age,
        replayed_at=now - age + timedelta(minutes=5) if replayed else None,
    )


def ids(uid: str) -> str:
    """A task id that names what the row is, for readable assertions."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, uid))


async def add(gateway: Gateway, *rows: Base) -> None:
    state: GatewayState = gateway.app.state.gateway
    async with state.host.sessions() as session, session.begin():
        session.add_all(rows)


async def keys_of(gateway: Gateway, column: Any) -> set[str]:
    state: GatewayState = gateway.app.state.gateway
    session: AsyncSession
    stmt = select(column)
    if column is Task.task_id:
        # Not the runs of the cleanup ticks themselves (gateway.process_runs).
        stmt = stmt.where(Task.task_type.not_like("schedule.%"))
    async with state.host.sessions() as session:
        return {str(v) for v in (await session.execute(stmt)).scalars()}


async def tick(gateway: Gateway, spec: MessageSpec[Any], job: str, now: datetime) -> None:
    state: GatewayState = gateway.app.state.gateway
    payload = ScheduleTick(job=job, scheduled_for=now)
    await state.host.publisher.publish(
        Envelope(type=spec.type, payload=payload.model_dump(mode="json"))
    )


async def test_failed_task_cleanup_removes_failed_tasks_and_dead_letters_past_retention_only(
    gateway: Gateway,
) -> None:
    now = datetime.now(UTC)
    await add(
        gateway,
        task(ids("failed-old"), "FAILED", OLD, now),
        task(ids("dead-old"), "DEAD_LETTERED", OLD, now),
        task(ids("failed-young"), "FAILED", YOUNG, now),
        task(ids("succeeded-old"), "SUCCEEDED", OLD, now),  # the system cleanup's, not this one's
        dead_letter("dl-old-waiting", OLD, now, replayed=False),
        dead_letter("dl-old-replayed", OLD, now, replayed=True),
        dead_letter("dl-young-waiting", YOUNG, now, replayed=False),
        dead_letter("dl-young-replayed", YOUNG, now, replayed=True),
        *(history(ids(name), now) for name in ("failed-old", "failed-young")),
    )
    await tick(gateway, FAILED_TASK_CLEANUP, "failed_task_cleanup", now)

    async def swept() -> bool:
        return ids("failed-old") not in await keys_of(gateway, Task.task_id)

    await eventually(swept, message="old FAILED task deleted")
    assert await keys_of(gateway, Task.task_id) == {ids("failed-young"), ids("succeeded-old")}
    assert await keys_of(gateway, DeadLetter.id) == {"dl-young-waiting", "dl-young-replayed"}
    # A deleted task's history goes with it; a kept task keeps its own.
    assert await keys_of(gateway, TaskEvent.task_id) == {ids("failed-young")}


async def test_system_cleanup_removes_the_gateways_old_rows_and_report_files_and_keeps_young(
    gateway: Gateway,
) -> None:
    now = datetime.now(UTC)
    state: GatewayState = gateway.app.state.gateway
    state.files.put("reports/old.html", b"<html>old</html>")
    state.files.put("reports/young.html", b"<html>young</html>")
    await add(
        gateway,
        task(ids("succeeded-old"), "SUCCEEDED", OLD, now),
        task(ids("cancelled-old"), "CANCELLED", OLD, now),
        task(ids("succeeded-young"), "SUCCEEDED", YOUNG, now),
        task(ids("failed-old"), "FAILED", OLD, now),  # the failed-task cleanup's
        webhook_registration(ids("webhook-old"), now),  # the webhook list reads it
        IdempotencyKey(
            scope="k", key="old", fingerprint="f", task_id="t", created_at=now - timedelta(hours=25)
        ),
        # The same key sent by two API keys: only the old one's record goes.
        IdempotencyKey(
            scope="j",
            key="same",
            fingerprint="f",
            task_id="t",
            created_at=now - timedelta(hours=25),
        ),
        IdempotencyKey(
            scope="k", key="same", fingerprint="f", task_id="t", created_at=now - timedelta(hours=1)
        ),
        IdempotencyKey(
            scope="k",
            key="young",
            fingerprint="f",
            task_id="t",
            created_at=now - timedelta(hours=23),
        ),
        *(
            SentNotification(
                event_id=name,
                notification_type="payment_received",
                recipients=["a@example.com"],
                status="sent",
                message_id="<m@example.com>",
                at=now - age,
            )
            for name, age in (("n-old", 91 * DAY), ("n-young", 89 * DAY))
        ),
        *(
            Report(
                report_id=name,
                report_type="comprehensive",
                days=7,
                files={"html": f"reports/{name}.html"},
                generated_at=now - age,
            )
            for name, age in (("old", 91 * DAY), ("young", 89 * DAY))
        ),
        *(
            ServiceHeartbeat(
                worker=name, service="notifier", started_at=now - age, last_seen=now - age
            )
            for name, age in (("gone:1", 8 * DAY), ("quiet:1", 6 * DAY))
        ),
        *(
            HealthSnapshot(snapshot_id=name, at=now - age, status="healthy", reasons=[], checks={})
            for name, age in (("h-old", OLD), ("h-young", YOUNG))
        ),
    )
    await tick(gateway, SESSION_CLEANUP, "system_cleanup", now)

    async def swept() -> bool:
        return "old" not in await keys_of(gateway, Report.report_id)

    await eventually(swept, message="old report deleted")
    assert await keys_of(gateway, Task.task_id) == {
        ids("succeeded-young"),
        ids("failed-old"),
        ids("webhook-old"),
    }
    assert await keys_of(gateway, IdempotencyKey.scope + ":" + IdempotencyKey.key) == {
        "k:young",
        "k:same",
    }
    assert await keys_of(gateway, SentNotification.event_id) == {"n-young"}
    assert await keys_of(gateway, Report.report_id) == {"young"}
    assert not state.files.exists("reports/old.html")
    assert state.files.exists("reports/young.html")
    workers = await keys_of(gateway, ServiceHeartbeat.worker)
    assert "gone:1" not in workers
    assert "quiet:1" in workers
    assert await keys_of(gateway, HealthSnapshot.snapshot_id) == {"h-young"}


async def test_the_dry_run_lists_counts_and_bytes_and_deletes_nothing(gateway: Gateway) -> None:
    now = datetime.now(UTC)
    state: GatewayState = gateway.app.state.gateway
    state.files.put("reports/old.pdf", b"%PDF-1.7 twelve")
    await add(
        gateway,
        task(ids("failed-old"), "FAILED", OLD, now),
        task(ids("failed-young"), "FAILED", YOUNG, now),
        dead_letter("dl-old", OLD, now, replayed=False),
        Report(
            report_id="old",
            report_type="deals",
            days=7,
            files={"pdf": "reports/old.pdf", "csv": "reports/never-written.csv"},
            generated_at=now - 91 * DAY,
        ),
    )
    response = await gateway.client.post(
        "/api/housekeeping/cleanup/", params={"dry_run": "true"}, headers=gateway.auth()
    )
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["dry_run"] is True
    by_kind = {s["kind"]: s for s in plan["sweeps"]}
    assert by_kind["failed_tasks"]["rows"] == 1
    assert by_kind["failed_tasks"]["bytes"] > 0
    assert by_kind["dead_letters"]["rows"] == 1
    # The body, its headers ({} as JSON text), no error.
    assert by_kind["dead_letters"]["bytes"] == len(b'{"id": "x"}') + len("{}")
    assert by_kind["reports"]["rows"] == 1
    assert by_kind["reports"]["files"] == 1
    assert by_kind["reports"]["file_bytes"] == len(b"%PDF-1.7 twelve")
    assert by_kind["finished_tasks"]["rows"] == 0
    assert all(s["left"] == 0 for s in plan["sweeps"])

    assert await keys_of(gateway, Task.task_id) == {ids("failed-old"), ids("failed-young")}
    assert await keys_of(gateway, DeadLetter.id) == {"dl-old"}
    assert await keys_of(gateway, Report.report_id) == {"old"}
    assert state.files.exists("reports/old.pdf")

    run = await gateway.client.post(
        "/api/housekeeping/cleanup/",
        params={"dry_run": "false", "job": "failed_task_cleanup"},
        headers=gateway.auth(),
    )
    assert run.status_code == 200, run.text
    done = {s["kind"]: s["rows"] for s in run.json()["sweeps"]}
    assert done == {"failed_tasks": 1, "dead_letters": 1}
    assert await keys_of(gateway, Task.task_id) == {ids("failed-young")}
    assert await keys_of(gateway, Report.report_id) == {"old"}  # not this job's


async def test_a_run_deletes_in_bounded_batches_and_says_what_is_left(gateway: Gateway) -> None:
    now = datetime.now(UTC)
    await add(gateway, *(task(ids(f"f{n}"), "FAILED", OLD + n * DAY, now) for n in range(5)))
    state: GatewayState = gateway.app.state.gateway
    settings = state.settings.model_copy(update={"cleanup_batch_size": 2, "cleanup_max_batches": 1})
    housekeeping = Housekeeping.from_settings(settings, state.files)
    async with state.host.sessions() as session, session.begin():
        report = await housekeeping.run(session, now, jobs=("failed_task_cleanup",))
    (failed,) = [s for s in report.sweeps if s.kind == "failed_tasks"]
    assert (failed.rows, failed.left) == (2, 3)
    # The oldest go first.
    assert await keys_of(gateway, Task.task_id) == {ids("f0"), ids("f1"), ids("f2")}


async def test_cleanup_needs_an_admin_key(gateway: Gateway) -> None:
    operator = await gateway.make_key("operator")
    response = await gateway.client.post(
        "/api/housekeeping/cleanup/", headers=gateway.auth(operator)
    )
    assert response.status_code == 403
    scoped = await gateway.make_key("admin", "org-1")
    response = await gateway.client.post("/api/housekeeping/cleanup/", headers=gateway.auth(scoped))
    assert response.status_code == 403
    bad = await gateway.client.post(
        "/api/housekeeping/cleanup/", params={"job": "everything"}, headers=gateway.auth()
    )
    assert bad.status_code == 422
    assert "job" in bad.text


async def test_the_cleanup_plan_asks_every_service_and_the_gateway_answers_its_part(
    gateway: Gateway,
) -> None:
    now = datetime.now(UTC)
    await add(gateway, task(ids("failed-old"), "FAILED", OLD, now))
    response = await gateway.client.post("/api/housekeeping/cleanup-plan/", headers=gateway.auth())
    assert response.status_code == 202, response.text
    tasks = response.json()["tasks"]
    assert set(tasks) == {"gateway", "deal-workflow", "file-processor", "notifier", "scheduler"}
    assert tasks["file-processor"]["queue"] == "file_processing"
    status_path = f"/api/background-tasks/{tasks['gateway']['task_id']}/status/"

    async def answered() -> Any:
        r = await gateway.client.get(status_path, headers=gateway.auth())
        assert r.status_code == 200, r.text
        return r.json() if r.json()["status"] == "SUCCEEDED" else None

    plan = (await eventually(answered, message="the gateway answered its plan task"))["result"]
    assert plan["service"] == "gateway"
    by_kind = {s["kind"]: s for s in plan["sweeps"]}
    assert by_kind["failed_tasks"]["rows"] == 1
    assert {"inbox_ids", "dead_letters", "reports", "health_snapshots"} <= set(by_kind)
    assert await keys_of(gateway, Task.task_id) >= {ids("failed-old")}, "a plan removes nothing"

    for key in (await gateway.make_key("operator"), await gateway.make_key("admin", "org-1")):
        refused = await gateway.client.post(
            "/api/housekeeping/cleanup-plan/", headers=gateway.auth(key)
        )
        assert refused.status_code == 403, refused.text
