"""The scheduling loop: every tick, renew (or try to take) the lease and, while leading, read the
schedules from the database and stage each enabled job's due run.

Exactly once per (job, scheduled time): the run row's key refuses a second insert, whoever tries
it, and only the lease holder inserts at all (checked in the run's own transaction). A due time
that passed before this instance started watching — no scheduler ran then — is caught up once,
for the most recent due time only, and only for a job the schedule has run before. A due time at
or before a schedule's last change is never run: a new cron expression, or a timer enabled again,
starts at its next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from prs_shared.db.engine import SessionFactory
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.outbox import add_to_outbox
from prs_shared.messaging.topology import Topology
from prs_shared.service import ServiceHost
from scheduler.clock import Clock
from scheduler.firing import latest_fire, next_fire
from scheduler.jobs import Job
from scheduler.lease import LeaderLease, LeaseLost
from scheduler.metrics import LEADER, RUNS
from scheduler.runs import last_scheduled, record_run
from scheduler.schedules import announcement, bump, current, load, seed, state

log = logging.getLogger(__name__)


class Scheduler:
    """One instance's loop. :meth:`run` is the service host's background job.

    ``jobs`` is the table of what each job sends; ``seeds`` the (cron, enabled) of schedules not
    in the database yet (the table's own crons, all enabled, when not given).
    """

    def __init__(
        self,
        jobs: Sequence[Job],
        clock: Clock,
        *,
        seeds: Mapping[str, tuple[str, bool]] | None = None,
        tick_seconds: float = 1.0,
        lease_seconds: float = 15.0,
    ) -> None:
        self.jobs = tuple(jobs)
        self._seeds = dict(seeds or {job.name: (job.cron, True) for job in self.jobs})
        self._seeded = False
        self._clock = clock
        self._tick_seconds = tick_seconds
        self._lease_ttl = timedelta(seconds=lease_seconds)
        self._renew_every = self._lease_ttl / 3
        self._sessions: SessionFactory
        self._topology: Topology
        self._on_committed: Callable[[], None] = lambda: None
        self.lease: LeaderLease
        self.is_leader = False
        self._lease_check_at: datetime | None = None
        self._watching_since: datetime
        # Job → (cron, next due time): a changed cron is computed afresh.
        self._next_due: dict[str, tuple[str, datetime]] = {}
        self._running = False
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()

    def bind(
        self,
        sessions: SessionFactory,
        topology: Topology,
        *,
        worker: str,
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        """Attach the database, the topology the outbox routes by, and the relay's wake-up."""
        self._sessions = sessions
        self._topology = topology
        self._on_committed = on_committed
        # Unique per instance, even for two schedulers in one process.
        self.lease = LeaderLease(f"{worker}/{uuid.uuid4().hex[:8]}", self._lease_ttl)
        self._watching_since = self._clock.now()

    async def run(self, host: ServiceHost) -> None:
        """Tick until :meth:`stop` (or cancellation), then hand the lease over."""
        self.bind(host.sessions, host.topology, worker=host.worker, on_committed=host.relay.notify)
        log.info("scheduler %s watching %d jobs", self.lease.holder, len(self.jobs))
        self._running = True
        try:
            while not self._stopping.is_set():
                try:
                    await self.tick()
                except Exception:
                    log.exception("scheduler tick failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._tick_seconds)
        finally:
            await self.release()
            self._stopped.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the current tick and release the lease."""
        self._stopping.set()
        if self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout)

    async def tick(self) -> list[Envelope]:
        """One pass: the lease if it is time to renew it, then every due job of the schedules as
        the database holds them now. Returns the runs staged."""
        now = self._clock.now()
        if not self._seeded:
            await self._seed(now)
        if self._lease_check_at is None or now >= self._lease_check_at:
            await self._check_lease(now)
        staged: list[Envelope] = []
        if not self.is_leader:
            return staged
        async with self._sessions() as session:
            schedules = {
                name: (row.cron, row.enabled) for name, row in (await load(session)).items()
            }
        for job in self.jobs:
            cron, enabled = schedules.get(job.name, (job.cron, False))
            if not enabled:
                continue
            known = self._next_due.get(job.name)
            if known is not None and known[0] == cron and now < known[1]:
                continue
            due = latest_fire(cron, now)
            try:
                envelope = await self.stage(job, due, now)
            except LeaseLost:
                log.warning("scheduler %s lost the lease", self.lease.holder)
                self._set_leader(False)
                break
            self._next_due[job.name] = (cron, next_fire(cron, due))
            if envelope is not None:
                staged.append(envelope)
        return staged

    async def stage(self, job: Job, due: datetime, now: datetime) -> Envelope | None:
        """Stage the run of ``job`` for ``due`` unless it exists, its schedule no longer names
        that time (changed or disabled since the tick read it), or it is a missed time of a job
        never run before. Raises :class:`LeaseLost` if this instance does not hold the lease."""
        async with self._sessions() as session, session.begin():
            await self.lease.fence(session, now)
            row = await current(session, job.name)
            if row is None or not row.enabled or latest_fire(row.cron, due) != due:
                return None
            if due <= row.changed_at:
                return None
            if due <= self._watching_since:
                last = await last_scheduled(session, job.name)
                if last is None or last >= due:
                    return None
                log.info("catching up %s: missed its run of %s", job.name, due.isoformat())
            envelope = await record_run(
                session, job, due, source="schedule", holder=self.lease.holder, now=now
            )
            if envelope is None:
                return None
            await bump(session, job.name)
            announced = await state(session, job)
            assert announced is not None  # the row was read in this transaction
            await add_to_outbox(session, [envelope, announcement(announced, now)], self._topology)
        self._on_committed()
        RUNS.labels(job.name, "schedule").inc()
        log.info("scheduled %s for %s as %s", job.name, due.isoformat(), envelope.id)
        return envelope

    async def _seed(self, now: datetime) -> None:
        """Store the schedules missing from the database, and tell replicas every schedule.

        Every instance announces at its start, so that a replica that missed events (a new
        gateway database, say) is complete again; announcements carry revisions, so the copies
        are harmless.
        """
        async with self._sessions() as session, session.begin():
            inserted = await seed(session, self._seeds, now)
            states = [await state(session, job) for job in self.jobs]
            await add_to_outbox(
                session, [announcement(s, now) for s in states if s is not None], self._topology
            )
        self._on_committed()
        if inserted:
            log.info("schedules seeded from the environment: %s", ", ".join(inserted))
        self._seeded = True

    async def release(self) -> None:
        """Give the lease up if we hold it; a standby then takes over at its next attempt."""
        if not self.is_leader:
            return
        self._set_leader(False)
        try:
            async with self._sessions() as session, session.begin():
                await self.lease.release(session, self._clock.now())
        except Exception:
            log.warning("lease not released; it expires on its own", exc_info=True)

    async def _check_lease(self, now: datetime) -> None:
        try:
            async with self._sessions() as session, session.begin():
                held = await self.lease.acquire(session, now)
        except Exception:
            # Leadership unproven; try again next tick. The fence keeps this safe either way.
            log.warning("lease check failed", exc_info=True)
            self._set_leader(False)
            self._lease_check_at = None
            return
        self._set_leader(held)
        self._lease_check_at = now + self._renew_every

    def _set_leader(self, leader: bool) -> None:
        if leader != self.is_leader:
            log.info("scheduler %s %s", self.lease.holder, "leads" if leader else "is standing by")
            LEADER.set(1 if leader else 0)
        self.is_leader = leader
