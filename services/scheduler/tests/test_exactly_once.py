"""Two scheduler instances on one database, a clock crossing many due times: every (job, time)
reaches the broker once — the failure of two Celery beats (celery #2856) does not happen here.
And a scheduler that was down catches each job up once, for its most recent missed time."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from prs_shared.db.engine import SessionFactory, create_engine, session_factory
from prs_shared.db.migrations import upgrade
from prs_shared.db.tables import outbox
from prs_shared.messaging.envelope import Envelope
from prs_shared.testing.fixtures import eventually
from scheduler.bootstrap import MIGRATIONS
from scheduler.jobs import JOBS
from scheduler.models import Lease, Schedule

STEP = timedelta(minutes=5)
CLOCKED_SCHEDULER = Path(__file__).parent / "clocked_scheduler.py"


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


class ClockFile:
    """The time every scheduler process reads: a file replaced atomically at each step."""

    def __init__(self, path: Path, now: datetime) -> None:
        self.path = path
        self.set(now)

    def set(self, when: datetime) -> datetime:
        self.now = when
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(repr(when.timestamp()))
        os.replace(tmp, self.path)
        return when


def scheduler_process(clock: ClockFile, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(CLOCKED_SCHEDULER), str(clock.path)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def pid_of(holder: str) -> int:
    """The process id in a lease holder's name (``host:pid/instance``)."""
    return int(holder.split("/", 1)[0].rsplit(":", 1)[1])


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_three_schedulers_publish_each_of_1000_slots_once_while_the_leader_is_killed(
    amqp_url: str,
    namespace: str,
    pg_databases: Any,
    broker_view: Any,
    kit: Any,
    tmp_path: Path,
) -> None:
    """kill -9 of whoever leads, every few steps: a standby takes the lapsed lease, and every
    run the dead one staged but had not relayed leaves through another instance's relay."""
    database_url = await pg_databases.create()
    engine = create_engine(database_url)
    await upgrade(engine, MIGRATIONS)  # before three processes start on the database at once
    sessions = session_factory(engine)
    clock = ClockFile(tmp_path / "clock", kit.SATURDAY_EVENING)
    start = clock.now
    env = {
        **os.environ,
        "AMQP_URL": amqp_url,
        "PRS_NAMESPACE": namespace,
        "PRS_DATABASE_URL": database_url,
        "PRS_DATA_DIR": str(tmp_path),
        "PRS_TICK_SECONDS": "0.02",
        "PRS_LEASE_SECONDS": "15",
        "PRS_HEARTBEAT_INTERVAL": "60",
        "PRS_METRICS_PORT": "0",
        "PRS_SHUTDOWN_GRACE": "2",
        "PRS_LOG_JSON": "false",
        "PRS_LOG_LEVEL": "INFO",
    }
    log = tmp_path / "schedulers.log"
    processes = [scheduler_process(clock, env, log) for _ in range(3)]
    kills = 0

    async def leading() -> bool:
        async with sessions() as session:
            seeded = await session.scalar(select(func.count()).select_from(Schedule))
            return seeded == len(JOBS) and await session.scalar(select(Lease.holder)) is not None

    async def all_watching() -> bool:
        # An instance that starts watching after a due time counts it as missed, and a job that
        # never ran is not caught up (the test above): the first step must find all three
        # watching, or the one that takes the lease at it would rightly skip the step's slot.
        return log.read_text().count(" watching ") >= len(processes)

    try:
        # The schedules are seeded at the first leader's first tick, at the clock's start.
        await eventually(leading, timeout=60, message="a leader")
        await eventually(all_watching, timeout=60, message="three schedulers watching")
        for step in itertools.count(1):
            now = clock.set(clock.now + STEP)
            want = expected_runs(start, now)

            async def caught_up(want: set[tuple[str, datetime]] = want) -> bool:
                return run_keys(await kit.all_runs(sessions)) == want

            try:
                await eventually(caught_up, timeout=60, message=f"runs due by {now}")
            except BaseException:
                print(log.read_text()[-6000:])  # pytest shows it with the failure
                print(sorted(run_keys(await kit.all_runs(sessions)) ^ want))
                raise
            if len(want) >= 1000:
                break
            if step % 25 == 0:
                async with sessions() as session:
                    holder = await session.scalar(select(Lease.holder))
                assert holder is not None
                leader = next(p for p in processes if p.pid == pid_of(holder))
                leader.kill()
                leader.wait()
                kills += 1
                processes.remove(leader)
                processes.append(scheduler_process(clock, env, log))
        await eventually(lambda: outbox_empty(sessions), timeout=30, message="outbox relayed")
        runs = await kit.all_runs(sessions)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        await engine.dispose()

    assert kills >= 20
    assert len(runs) >= 1000
    assert run_keys(runs) == expected_runs(start, clock.now)
    # Leadership did move: runs were staged by more instances than ever ran at once.
    assert len({run.holder for run in runs}) > 3

    published = (
        await broker_view.take("events")
        + await broker_view.take("business_processes")
        + await broker_view.take("reports")
    )
    by_id = Counter(str(e.id) for e in published)
    # Each run's message reached the broker, and no message of a run that was not recorded.
    assert set(by_id) == {run.message_id for run in runs}
    # A relay killed between its publish and marking the row sent leaves the row to another
    # relay: a copy with the same message id, which consumers' inboxes absorb. At most one
    # relay batch per kill can be copied.
    copies = sum(n - 1 for n in by_id.values())
    assert copies <= kills * 100, f"{copies} copies over {kills} kills"
