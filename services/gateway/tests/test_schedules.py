"""The admin schedule endpoints: the replica of the scheduler's announcements, and the commands
they queue for it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.registry import replicate_schedules
from prs_shared.db.engine import create_engine, session_factory
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.handlers import Item
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.schedule import SCHEDULE_CHANGED, ScheduleState
from prs_shared.testing.fixtures import BrokerProbe, eventually

from .conftest import Gateway

pytestmark = pytest.mark.asyncio

SCHEDULES = "/api/automated-processes/schedules/"


def _announced(job: str, *, enabled: bool, cron: str, revision: int) -> Envelope:
    state = ScheduleState(
        job=job,
        cron=cron,
        enabled=enabled,
        description="Every 10 minutes: look for stuck or overdue tasks.",
        message_type="schedule.task_monitoring",
        message_kind="event",
        revision=revision,
        changed_at=datetime(2026, 12, 1, tzinfo=UTC),
        changed_by="ops",
        last_run_at=datetime(2026, 12, 1, 0, 10, tzinfo=UTC),
        last_run_source="schedule",
    )
    return Envelope(type=SCHEDULE_CHANGED.type, payload=state.model_dump(mode="json"))


async def test_an_admin_sees_every_process_schedule_even_before_the_scheduler_announced_it(
    gateway: Gateway,
) -> None:
    response = await gateway.client.get(SCHEDULES, headers=gateway.auth())
    assert response.status_code == 200, response.text
    schedules = {s["name"]: s for s in response.json()}
    assert len(schedules) == 8
    assert schedules["health_monitoring"]["cron"] == "*/5 * * * *"
    assert schedules["health_monitoring"]["schedule"] == "every 5 minutes"
    assert schedules["health_monitoring"]["enabled"] is None
    assert schedules["health_monitoring"]["announced"] is False


async def test_the_list_follows_the_highest_revision_the_scheduler_announced(
    gateway: Gateway, publisher: Publisher, database_url: str
) -> None:
    await publisher.publish(
        _announced("task_monitoring", enabled=False, cron="*/15 * * * *", revision=4)
    )

    async def folded() -> dict[str, object] | None:
        r = await gateway.client.get(f"{SCHEDULES}task_monitoring/", headers=gateway.auth())
        body: dict[str, object] = r.json()
        return body if body["announced"] else None

    schedule = await eventually(folded, message="announcement folded")
    assert (schedule["enabled"], schedule["cron"], schedule["revision"]) == (
        False,
        "*/15 * * * *",
        4,
    )
    assert schedule["next_run"] is None
    # An older copy arriving later (a redelivery, a scheduler's start) changes nothing.
    older = _announced("task_monitoring", enabled=True, cron="*/10 * * * *", revision=2)
    engine = create_engine(database_url)
    async with session_factory(engine)() as session, session.begin():
        payload = ScheduleState.model_validate(older.payload)
        await replicate_schedules([Item(older, payload)], session, None)
    await engine.dispose()
    again = await gateway.client.get(f"{SCHEDULES}task_monitoring/", headers=gateway.auth())
    assert again.json()["revision"] == 4
    status = (
        await gateway.client.get(
            "/api/automated-processes/process-status/",
            params={"process_name": "task_monitoring"},
            headers=gateway.auth(),
        )
    ).json()
    assert status["enabled"] is False
    assert status["next_run"] is None
    assert status["status"] == "event_sent"
    assert status["last_run"].startswith("2026-12-01T00:10:00")
    # A run of a disabled schedule is refused before anything is queued.
    run = await gateway.client.post(f"{SCHEDULES}task_monitoring/run/", headers=gateway.auth())
    assert run.status_code == 409


@pytest.mark.parametrize(
    ("method", "path", "body", "type_", "expected"),
    [
        (
            "PATCH",
            "overdue_detection/",
            {"cron": "0 2 * * *"},
            "schedule.update",
            {"cron": "0 2 * * *"},
        ),
        ("POST", "overdue_detection/disable/", None, "schedule.update", {"enabled": False}),
        ("POST", "overdue_detection/enable/", None, "schedule.update", {"enabled": True}),
        ("POST", "overdue_detection/run/", None, "schedule.run_now", {}),
    ],
)
async def test_an_admin_change_is_queued_for_the_scheduler_with_who_asked(
    gateway: Gateway,
    broker: BrokerProbe,
    method: str,
    path: str,
    body: dict[str, object] | None,
    type_: str,
    expected: dict[str, object],
) -> None:
    response = await gateway.client.request(
        method, f"{SCHEDULES}{path}", json=body, headers=gateway.auth()
    )
    assert response.status_code == 202, response.text
    assert response.json()["queue"] == "system"
    [message] = await eventually(
        lambda: broker.get_all(gateway.settings.namespace + "system"), message="command queued"
    )
    envelope = Envelope.model_validate_json(message.body)
    assert envelope.type == type_
    assert envelope.organization_id is None
    assert envelope.payload["job"] == "overdue_detection"
    assert envelope.payload["requested_by"]
    assert expected.items() <= envelope.payload.items()


@pytest.mark.parametrize("role", ["operator", "viewer"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "", None),
        ("GET", "system_cleanup/", None),
        ("PATCH", "system_cleanup/", {"enabled": False}),
        ("POST", "system_cleanup/disable/", None),
        ("POST", "system_cleanup/enable/", None),
        ("POST", "system_cleanup/run/", None),
    ],
)
async def test_schedules_are_refused_to_operators_and_viewers(
    gateway: Gateway, role: str, method: str, path: str, body: dict[str, object] | None
) -> None:
    key = await gateway.make_key(role)
    response = await gateway.client.request(
        method, f"{SCHEDULES}{path}", json=body, headers=gateway.auth(key)
    )
    assert response.status_code == 403, response.text


async def test_an_admin_key_of_one_organization_may_not_change_schedules(
    gateway: Gateway,
) -> None:
    key = await gateway.make_key("admin", "org-a")
    response = await gateway.client.post(
        f"{SCHEDULES}system_cleanup/disable/", headers=gateway.auth(key)
    )
    assert response.status_code == 403
    assert "organization" in response.json()["detail"]


@pytest.mark.parametrize(
    "body", [{"cron": "every day"}, {"cron": "61 * * * *"}, {"cron": ""}, {"cron": "* * *"}]
)
async def test_a_bad_cron_is_422_naming_the_field(
    gateway: Gateway, broker: BrokerProbe, body: dict[str, object]
) -> None:
    response = await gateway.client.patch(
        f"{SCHEDULES}overdue_detection/", json=body, headers=gateway.auth()
    )
    assert response.status_code == 422, response.text
    assert "cron" in response.json()["detail"]
    assert await broker.get_all(gateway.settings.namespace + "system") == []


async def test_a_change_with_nothing_to_change_is_422(gateway: Gateway) -> None:
    response = await gateway.client.patch(
        f"{SCHEDULES}overdue_detection/", json={}, headers=gateway.auth()
    )
    assert response.status_code == 422
    assert "enabled" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "nope/", None),
        ("PATCH", "nope/", {"enabled": False}),
        ("POST", "nope/disable/", None),
        ("POST", "nope/run/", None),
    ],
)
async def test_an_unknown_schedule_is_404_listing_the_known_ones(
    gateway: Gateway, method: str, path: str, body: dict[str, object] | None
) -> None:
    response = await gateway.client.request(
        method, f"{SCHEDULES}{path}", json=body, headers=gateway.auth()
    )
    assert response.status_code == 404
    assert "failed_task_cleanup" in response.json()["detail"]
