"""Two scheduler instances on one database, a clock crossing many due times: every (job, time)
reaches the broker once — the failure of two Celery beats (celery #2856) does not happen here.
And a scheduler that was down catches each job up once, for its most recent missed time."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from prs_shared.db.engine import SessionFactory
from prs_shared.db.tables import outbox
from prs_shared.messaging.envelope import Envelope
from prs_shared.testing.fixtures import eventually
from scheduler.jobs import JOBS

STEP = timedelta(minutes=5)


def due_times(job: str, after: datetime, until: datetime) -> Iterator[datetime]:
    """The test's own reading of the schedule, minute by minute, in (after, until]."""
    rules = {
        "deal_verification_reminders": lambda t: t.hour == 0 and t.minute == 0,
        "commission_calculation": lambda t: t.hour % 6 == 0 and t.minute == 0,
        "audit_report_generation": lambda t: t.weekday() == 6 and t.hour == 0 and t.minute == 0,
        "overdue_detection": lambda t: t.hour == 1 and t.minute == 0,
        "system_cleanup": lambda t: t.minute == 0,
        "health_monitoring": lambda t: t.minute % 5 == 0,
        "task_monitoring": lambda t: t.minute % 10 == 0,
        "failed_task_cleanup": lambda t: t.minute == 0,
    }
    t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while t <= until:
        if rules[job](t):
            yield t
        t += timedelta(minutes=1)


def expected_runs(after: datetime, until: datetime) -> set[tuple[str, datetime]]:
    return {(job.name, t) for job in JOBS for t in due_times(job.name, after, until)}


def run_keys(runs: list[Any]) -> set[tuple[str, datetime]]:
    return {(run.job, run.scheduled_for) for run in runs}


async def outbox_empty(sessions: SessionFactory) -> bool:
    async with sessions() as session:
        return not await session.scalar(select(func.count()).select_from(outbox))


def key_of(envelope: Envelope) -> tuple[str, str]:
    """(message type, scheduled time) of a run's message, read back from the run table."""
    return envelope.type, str(envelope.id)


async def test_two_instances_publish_every_job_time_exactly_once(
    database_url: str, run_scheduler: Any, clock: Any, broker_view: Any, kit: Any
) -> None:
    start = clock.now()
    async with (
        run_scheduler(database_url, clock) as first,
        run_scheduler(database_url, clock) as second,
    ):
        sessions = first.sessions
        # Each 5-minute step outlives the 15 s lease: leadership is up for grabs at every step.
        for _ in range(15):
            now = clock.advance(minutes=5)
            want = expected_runs(start, now)

            async def caught_up(want: set[tuple[str, datetime]] = want) -> bool:
                return run_keys(await kit.all_runs(sessions)) == want

            await eventually(caught_up, timeout=10, message=f"runs due by {now}")
        await asyncio.sleep(0.2)  # more ticks at the last time: still nothing new
        runs = await kit.all_runs(sessions)
        await eventually(lambda: outbox_empty(sessions), message="outbox relayed")
        leaders = {run.holder for run in runs}
        assert [first.scheduler.is_leader, second.scheduler.is_leader].count(True) <= 1

    assert run_keys(runs) == expected_runs(start, clock.now())
    assert len(runs) == 30
    assert all(run.source == "schedule" for run in runs)
    assert leaders <= {first.scheduler.lease.holder, second.scheduler.lease.holder}

    by_id = {run.message_id: run for run in runs}
    commands = await broker_view.take("business_processes") + await broker_view.take("reports")
    events = await broker_view.take("events")
    published = commands + events
    # One message per run, and no run without its message. (Two outbox relays on one SQLite
    # file may both send a row: the copy carries the same message id, which consumers' inboxes
    # absorb; on PostgreSQL the relays lock their rows, so not even a copy goes out.)
    assert {str(e.id) for e in published} == set(by_id)
    if database_url.startswith("postgresql"):
        assert len(published) == len(runs)
    assert Counter(e.type for e in {e.id: e for e in commands}.values()) == {
        "process.verification_reminders.run": 1,
        "process.commission_calculation.run": 1,
        "process.overdue_detection.run": 1,
        "report.audit.generate": 1,
    }
    for envelope in published:
        run = by_id[str(envelope.id)]
        assert envelope.type == run.message_type
        assert (str(envelope.task_id) if envelope.task_id else None) == run.task_id
        if run.task_id is None:
            assert envelope.payload == {
                "job": run.job,
                "scheduled_for": run.scheduled_for.isoformat().replace("+00:00", "Z"),
            }


async def test_a_scheduler_that_was_down_runs_each_missed_job_once_for_its_latest_time(
    database_url: str, run_scheduler: Any, clock: Any, broker_view: Any, kit: Any
) -> None:
    start = clock.now()
    async with run_scheduler(database_url, clock) as host:
        for _ in range(2):  # to Sunday 00:02:30: midnight runs; 01:00 not yet
            want = expected_runs(start, clock.advance(minutes=5))

            async def first_runs(want: set[tuple[str, datetime]] = want) -> bool:
                return run_keys(await kit.all_runs(host.sessions)) == want

            await eventually(first_runs, message="runs before the gap")

    # Down from Sunday 00:02:30 to Tuesday 13:07:30: two days of due times missed.
    clock.set(datetime.fromisoformat("2026-03-03T13:07:30+00:00"))
    async with run_scheduler(database_url, clock) as host:
        caught_up = {
            ("deal_verification_reminders", "2026-03-03T00:00:00+00:00"),
            ("commission_calculation", "2026-03-03T12:00:00+00:00"),
            ("system_cleanup", "2026-03-03T13:00:00+00:00"),
            ("failed_task_cleanup", "2026-03-03T13:00:00+00:00"),
            ("health_monitoring", "2026-03-03T13:05:00+00:00"),
            ("task_monitoring", "2026-03-03T13:00:00+00:00"),
        }
        caught_up_keys = {(job, datetime.fromisoformat(t)) for job, t in caught_up}

        async def after_gap() -> bool:
            return run_keys(await kit.all_runs(host.sessions)) == want | caught_up_keys

        await eventually(after_gap, message="one catch-up run per job")
        await asyncio.sleep(0.3)  # many more ticks: no further catch-up
        assert run_keys(await kit.all_runs(host.sessions)) == want | caught_up_keys
        # Not caught up: the weekly report ran on Sunday, its latest time; overdue detection
        # never ran before the gap, so its schedule starts at its next time.

        clock.set(datetime.fromisoformat("2026-03-04T01:00:10+00:00"))

        async def overdue_on_time() -> bool:
            runs = await kit.all_runs(host.sessions)
            return (
                "overdue_detection",
                datetime.fromisoformat("2026-03-04T01:00:00+00:00"),
            ) in run_keys(runs)

        await eventually(overdue_on_time, message="overdue detection at its next time")
        await eventually(lambda: outbox_empty(host.sessions), message="outbox relayed")

    commands = await broker_view.take("business_processes")
    assert Counter(e.type for e in {e.id: e for e in commands}.values()) == {
        "process.verification_reminders.run": 3,  # Sunday, Tuesday (caught up), Wednesday
        "process.commission_calculation.run": 3,  # Sunday 00:00, Tuesday 12:00, Wednesday 00:00
        "process.overdue_detection.run": 1,
    }
