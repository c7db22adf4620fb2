"""Schedules live in the scheduler's database: seeded once from the environment, read at every
tick, changed at run time through ``schedule.update`` (audited), and announced to replicas."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.schedule import RUN_JOB_NOW, UPDATE_SCHEDULE, ScheduleState
from prs_shared.testing.fixtures import eventually
from scheduler.jobs import JOBS
from scheduler.models import Schedule, ScheduleChange


def update(job: str, **change: Any) -> Envelope:
    return Envelope(
        type=UPDATE_SCHEDULE.type,
        task_id=uuid.uuid4(),
        payload={"job": job, "requested_by": "ops-key", **change},
    )


async def stored(host: Any) -> dict[str, Schedule]:
    async with host.sessions() as session:
        return {row.name: row for row in await session.scalars(select(Schedule))}


async def changes(host: Any) -> list[ScheduleChange]:
    async with host.sessions() as session:
        return list(await session.scalars(select(ScheduleChange).order_by(ScheduleChange.id)))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_the_environment_seeds_the_schedules_once_and_later_starts_keep_the_database(
    database_url: str, run_scheduler: Any, clock: Any, kit: Any
) -> None:
    async with run_scheduler(
        database_url,
        clock,
        disabled_jobs=frozenset({"task_monitoring"}),
        job_crons={"overdue_detection": "30 2 * * *"},
    ) as host:
        rows = await eventually(lambda: stored(host), message="schedules seeded")
        assert set(rows) == {job.name for job in JOBS}
        assert (rows["task_monitoring"].cron, rows["task_monitoring"].enabled) == (
            "*/10 * * * *",
            False,
        )
        assert rows["overdue_detection"].cron == "30 2 * * *"
        assert all(row.changed_by == "environment" for row in rows.values())
    # Different environment on the next start: the stored schedules stay as they are.
    async with run_scheduler(
        database_url, clock, job_crons={"task_monitoring": "0 3 * * *"}
    ) as host:
        await asyncio.sleep(0.2)
        rows = await stored(host)
        assert (rows["task_monitoring"].cron, rows["task_monitoring"].enabled) == (
            "*/10 * * * *",
            False,
        )
        assert rows["overdue_detection"].cron == "30 2 * * *"
        seeded = [c.job for c in await changes(host) if c.action == "seeded"]
        assert sorted(seeded) == sorted(job.name for job in JOBS)


async def test_a_schedule_disabled_at_run_time_publishes_nothing_until_enabled_again(
    database_url: str, run_scheduler: Any, clock: Any, publisher: Any, broker_view: Any, kit: Any
) -> None:
    async with run_scheduler(database_url, clock) as host:
        await eventually(lambda: stored(host), message="schedules seeded")
        await publisher.publish(update("health_monitoring", enabled=False))

        async def disabled() -> bool:
            return not (await stored(host))["health_monitoring"].enabled

        await eventually(disabled, message="disabled")
        clock.set(at("2026-03-01T00:00:30+00:00"))  # 23:55 and midnight passed

        async def midnight_runs() -> set[str]:
            return {r.job for r in await kit.all_runs(host.sessions)}

        async def midnight_ran() -> bool:
            return "task_monitoring" in await midnight_runs()

        await eventually(midnight_ran, message="the midnight runs")
        await asyncio.sleep(0.2)  # many more ticks
        ran = await midnight_runs()
        assert "health_monitoring" not in ran
        assert {"task_monitoring", "system_cleanup", "commission_calculation"} <= ran
        events = await broker_view.take("events")
        assert "schedule.system_health_check" not in {e.type for e in events}

        await publisher.publish(update("health_monitoring", enabled=True))

        async def enabled() -> bool:
            return (await stored(host))["health_monitoring"].enabled

        await eventually(enabled, message="enabled again")
        await asyncio.sleep(0.2)
        # Enabled at 00:00:30: midnight was before the change, so it is not run for it ...
        assert "health_monitoring" not in await midnight_runs()
        clock.set(at("2026-03-01T00:05:01+00:00"))

        async def next_time() -> list[Any]:
            return [r for r in await kit.all_runs(host.sessions) if r.job == "health_monitoring"]

        # ... but at its next time.
        [run] = await eventually(next_time, message="runs at its next time")
        assert run.scheduled_for == at("2026-03-01T00:05:00+00:00")
        audit = [(c.job, c.action, c.actor) for c in await changes(host) if c.action != "seeded"]
        assert audit == [
            ("health_monitoring", "disabled", "ops-key"),
            ("health_monitoring", "enabled", "ops-key"),
        ]


async def test_a_changed_cron_applies_at_the_next_tick_without_a_restart(
    database_url: str, run_scheduler: Any, clock: Any, publisher: Any, kit: Any
) -> None:
    async with run_scheduler(database_url, clock) as host:
        await eventually(lambda: stored(host), message="schedules seeded")
        # Daily at 01:00 becomes every two minutes, from 23:52:30 on.
        await publisher.publish(update("overdue_detection", cron="*/2 * * * *"))

        async def changed() -> bool:
            return (await stored(host))["overdue_detection"].cron == "*/2 * * * *"

        await eventually(changed, message="cron changed")
        clock.set(at("2026-02-28T23:54:10+00:00"))

        async def overdue_runs() -> list[datetime]:
            runs = await kit.all_runs(host.sessions)
            return [r.scheduled_for for r in runs if r.job == "overdue_detection"]

        assert await eventually(overdue_runs, message="the new cron's first time") == [
            at("2026-02-28T23:54:00+00:00")
        ]
        clock.set(at("2026-02-28T23:56:10+00:00"))

        async def second() -> bool:
            return len(await overdue_runs()) == 2

        await eventually(second, message="and its next")
        [change] = [c for c in await changes(host) if c.action == "cron_changed"]
        assert (change.before, change.after) == (
            {"cron": "0 1 * * *", "enabled": True},
            {"cron": "*/2 * * * *", "enabled": True},
        )


async def test_an_invalid_cron_or_an_unknown_job_fails_the_change_naming_it(
    database_url: str, run_scheduler: Any, clock: Any, publisher: Any, tap: Any
) -> None:
    events = await tap("task.#")
    bad_cron = update("overdue_detection", cron="every day")
    unknown = update("no_such_job", enabled=False)
    async with run_scheduler(database_url, clock) as host:
        await eventually(lambda: stored(host), message="schedules seeded")
        await publisher.publish_many([bad_cron, unknown])

        def failures(seen: list[Envelope]) -> dict[Any, str]:
            return {e.task_id: e.payload["error"] for e in seen if e.type == "task.failed"}

        await events.wait_for(lambda seen: len(failures(seen)) == 2)
        assert (await stored(host))["overdue_detection"].cron == "0 1 * * *"
    errors = failures(events.seen)
    assert "cron" in errors[bad_cron.task_id]
    assert "every day" in errors[bad_cron.task_id]
    assert "no_such_job" in errors[unknown.task_id]


async def test_every_change_and_run_is_announced_with_a_growing_revision(
    database_url: str, run_scheduler: Any, clock: Any, publisher: Any, tap: Any
) -> None:
    announced = await tap("scheduler.schedule_changed")
    async with run_scheduler(database_url, clock) as host:

        def states(seen: list[Envelope]) -> list[ScheduleState]:
            return [ScheduleState.model_validate(e.payload) for e in seen]

        # At start: every schedule, as stored.
        await announced.wait_for(lambda seen: {s.job for s in states(seen)} == set(host_jobs()))
        await publisher.publish(update("commission_calculation", enabled=False))
        await announced.wait_for(
            lambda seen: any(
                not s.enabled for s in states(seen) if s.job == "commission_calculation"
            )
        )
        await publisher.publish(
            Envelope(type=RUN_JOB_NOW.type, task_id=uuid.uuid4(), payload={"job": "system_cleanup"})
        )
        await announced.wait_for(
            lambda seen: any(
                s.last_run_source == "manual" for s in states(seen) if s.job == "system_cleanup"
            )
        )
        del host
    seen = states(announced.seen)
    commission = [s for s in seen if s.job == "commission_calculation"]
    assert (commission[0].revision, commission[0].enabled) == (0, True)
    assert (commission[-1].revision, commission[-1].enabled) == (1, False)
    assert commission[-1].changed_by == "ops-key"
    cleanup = [s for s in seen if s.job == "system_cleanup"][-1]
    assert cleanup.message_type == "schedule.session_cleanup"
    assert cleanup.last_run_at == clock.now().replace(microsecond=0)
    assert cleanup.revision == 1


def host_jobs() -> list[str]:
    return [job.name for job in JOBS]
