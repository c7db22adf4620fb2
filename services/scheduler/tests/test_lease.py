"""The leader lease: one holder at a time, a standby takes over after expiry or release, and an
instance without the lease cannot stage runs (fencing)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from prs_shared.db.engine import SessionFactory
from prs_shared.db.tables import outbox
from prs_shared.messaging.topology import Topology
from scheduler.jobs import JOBS
from scheduler.lease import LeaderLease, LeaseLost
from scheduler.models import Run
from scheduler.scheduling import Scheduler

TTL = timedelta(seconds=15)


def instance(sessions: SessionFactory, clock: Any, name: str) -> Scheduler:
    scheduler = Scheduler(JOBS, clock, lease_seconds=TTL.total_seconds())
    scheduler.bind(sessions, Topology(namespace="lease-test."), worker=name)
    return scheduler


async def acquire(sessions: SessionFactory, lease: LeaderLease, now: Any) -> bool:
    async with sessions() as session, session.begin():
        return await lease.acquire(session, now)


async def count(sessions: SessionFactory, table: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_only_one_of_two_instances_holds_the_lease(
    sessions: SessionFactory, clock: Any
) -> None:
    a = LeaderLease("a", TTL)
    b = LeaderLease("b", TTL)
    assert await acquire(sessions, a, clock.now())
    assert not await acquire(sessions, b, clock.now())
    # Renewal keeps it: the standby still cannot take it where the first expiry would have been.
    assert await acquire(sessions, a, clock.advance(seconds=10))
    assert not await acquire(sessions, b, clock.advance(seconds=10))
    async with sessions() as session:
        held = await a.current(session)
    assert held is not None
    assert held.holder == "a"
    assert held.expires_at == clock.now() - timedelta(seconds=10) + TTL


async def test_the_standby_takes_over_once_the_lease_expires(
    sessions: SessionFactory, clock: Any
) -> None:
    a = LeaderLease("a", TTL)
    b = LeaderLease("b", TTL)
    assert await acquire(sessions, a, clock.now())
    assert not await acquire(sessions, b, clock.advance(seconds=14.9))
    assert await acquire(sessions, b, clock.advance(seconds=0.1))
    assert not await acquire(sessions, a, clock.now())


async def test_a_released_lease_is_taken_over_at_once(sessions: SessionFactory, clock: Any) -> None:
    a = LeaderLease("a", TTL)
    b = LeaderLease("b", TTL)
    assert await acquire(sessions, a, clock.now())
    async with sessions() as session, session.begin():
        await a.release(session, clock.now())
    assert await acquire(sessions, b, clock.now())


async def test_two_schedulers_ticking_together_have_one_leader(
    sessions: SessionFactory, clock: Any
) -> None:
    a, b = instance(sessions, clock, "a"), instance(sessions, clock, "b")
    for _ in range(3):
        await a.tick()
        await b.tick()
        assert [a.is_leader, b.is_leader].count(True) == 1
        clock.advance(seconds=6)


async def test_an_expired_holder_cannot_stage_runs(sessions: SessionFactory, clock: Any) -> None:
    a, b = instance(sessions, clock, "a"), instance(sessions, clock, "b")
    await a.tick()
    assert a.is_leader
    job = JOBS[0]
    due = clock.advance(hours=1)

    # Paused past its TTL, nobody has taken over yet: still no longer allowed.
    with pytest.raises(LeaseLost):
        await a.stage(job, due, clock.now())

    await b.tick()
    assert b.is_leader
    assert a.is_leader, "a has not noticed yet"
    with pytest.raises(LeaseLost):
        await a.stage(job, due, clock.now())

    # Its next tick notices and stands down without staging anything.
    assert await a.tick() == []
    assert not a.is_leader
    async with sessions() as session:
        holders = set(await session.scalars(select(Run.holder)))
    assert holders == {b.lease.holder}, "every run was staged by the new leader"


async def test_the_leader_stages_a_due_time_once_whoever_asks_again(
    sessions: SessionFactory, clock: Any
) -> None:
    a = instance(sessions, clock, "a")
    await a.tick()
    job = next(j for j in JOBS if j.name == "health_monitoring")
    due = clock.now() + timedelta(minutes=2, seconds=30)  # 23:55, after it started watching
    before = await count(sessions, outbox)  # the schedules announced at start
    assert await a.stage(job, due, clock.now()) is not None
    assert await a.stage(job, due, clock.now()) is None
    assert await count(sessions, outbox) == before + 2, "the run's message and its announcement"


async def test_a_stopping_leader_hands_over_before_its_lease_would_expire(
    sessions: SessionFactory, clock: Any
) -> None:
    a, b = instance(sessions, clock, "a"), instance(sessions, clock, "b")
    await a.tick()
    await b.tick()
    assert (a.is_leader, b.is_leader) == (True, False)
    await a.release()
    assert not a.is_leader
    clock.advance(seconds=5)  # b's next attempt, ten seconds before a's lease would have expired
    await b.tick()
    assert b.is_leader
