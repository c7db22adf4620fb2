"""Composition root of the scheduler service: real adapters wired to the handlers.

Tests pass their own clock to :func:`bootstrap`; everything else is built from settings here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prs_shared.diagnostics import base_handlers
from prs_shared.messaging.handlers import Handler, HandlerRegistry
from prs_shared.messaging.schedule import RUN_JOB_NOW, UPDATE_SCHEDULE
from prs_shared.service import ServiceHost
from scheduler.clock import Clock, SystemClock
from scheduler.handlers import ScheduleDeps, handle_run_now, handle_update
from scheduler.jobs import JOBS, Job
from scheduler.scheduling import Scheduler
from scheduler.settings import SchedulerSettings

MIGRATIONS = Path(__file__).parent / "migrations"
COMMAND_QUEUES = ("system",)


def handlers(jobs: Sequence[Job], clock: Clock) -> HandlerRegistry:
    """Every message the service handles, and the function that handles it."""
    deps = ScheduleDeps(jobs={job.name: job for job in jobs}, clock=clock)
    return HandlerRegistry(
        [
            *base_handlers(),
            Handler(RUN_JOB_NOW, handle_run_now, deps),
            Handler(UPDATE_SCHEDULE, handle_update, deps),
        ]
    )


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
