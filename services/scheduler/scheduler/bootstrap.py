"""Composition root of the scheduler service: real adapters wired to the handlers.

Tests pass their own clock to :func:`bootstrap`; everything else is built from settings here.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from prs_shared.diagnostics import base_registry
from prs_shared.messaging.handlers import HandlerRegistry
from prs_shared.messaging.schedule import RUN_JOB_NOW, UPDATE_SCHEDULE
from prs_shared.service import ServiceHost
from scheduler.clock import Clock, SystemClock
from scheduler.handlers import handle_run_now, handle_update
from scheduler.jobs import JOBS, Job
from scheduler.scheduling import Scheduler
from scheduler.settings import SchedulerSettings

MIGRATIONS = Path(__file__).parent / "migrations"
COMMAND_QUEUES = ("system",)


def handlers(jobs: Sequence[Job], clock: Clock) -> HandlerRegistry:
    registry = base_registry()
    by_name = {job.name: job for job in jobs}
    registry.register(
        RUN_JOB_NOW.type, functools.partial(handle_run_now, jobs=by_name, clock=clock)
    )
    registry.register(
        UPDATE_SCHEDULE.type, functools.partial(handle_update, jobs=by_name, clock=clock)
    )
    return registry


class SchedulerHost(ServiceHost):
    """The service host with the scheduling loop as its background job."""

    def __init__(self, settings: SchedulerSettings, clock: Clock) -> None:
        jobs = JOBS
        self.scheduler = Scheduler(
            jobs,
            clock,
            seeds=settings.seeds(),
            tick_seconds=settings.tick_seconds,
            lease_seconds=settings.lease_seconds,
        )
        super().__init__(
            settings,
            handlers=handlers(jobs, clock),
            command_queues=COMMAND_QUEUES,
            migrations=MIGRATIONS,
            background=[self.scheduler.run],
        )

    async def stop(self) -> None:
        # Before the relay stops: whatever the last tick staged still leaves, and a standby can
        # take the released lease at once.
        await self.scheduler.stop()
        await super().stop()


def bootstrap(
    settings: SchedulerSettings | None = None, *, clock: Clock | None = None
) -> SchedulerHost:
    return SchedulerHost(settings or SchedulerSettings(), clock or SystemClock())
