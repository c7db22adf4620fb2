"""What the gateway knows of the scheduler's processes: their names, the seed's schedule, and the
copy of the scheduler's schedules it keeps (:class:`~gateway.models.ScheduleReplica`).

The scheduler owns the schedules. Until it has announced one (a new gateway database before the
scheduler's first start), the gateway shows the seed's cron expression and says the enabled flag
is not known yet rather than guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter  # type: ignore[import-untyped]  # ships no type information
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import ScheduleReplica
from prs_shared.messaging import deals, schedule
from prs_shared.messaging.catalog import MessageSpec


@dataclass(frozen=True)
class Process:
    """A scheduled process: what each run sends and the seed's cron expression (UTC)."""

    name: str
    message: MessageSpec
    cron: str


PROCESSES: dict[str, Process] = {
    p.name: p
    for p in (
        Process("deal_verification_reminders", deals.RUN_VERIFICATION_REMINDERS, "0 0 * * *"),
        Process("commission_calculation", deals.RUN_COMMISSION_CALCULATION, "0 */6 * * *"),
        Process("audit_report_generation", deals.GENERATE_AUDIT_REPORT, "0 0 * * 0"),
        Process("overdue_detection", deals.DETECT_OVERDUE_DEALS, "0 1 * * *"),
        Process("system_cleanup", schedule.SESSION_CLEANUP, "0 * * * *"),
        Process("health_monitoring", schedule.SYSTEM_HEALTH_CHECK, "*/5 * * * *"),
        Process("task_monitoring", schedule.TASK_MONITORING, "*/10 * * * *"),
        Process("failed_task_cleanup", schedule.FAILED_TASK_CLEANUP, "0 * * * *"),
    )
}
"""The seed's process names, in the seed's order (the scheduler's job table has the same)."""


def is_valid_cron(expression: str) -> bool:
    return bool(croniter.is_valid(expression))


def next_run(expression: str, after: datetime) -> datetime | None:
    """The first time strictly after ``after`` that ``expression`` names (UTC)."""
    if not is_valid_cron(expression):
        return None
    fire: datetime = croniter(expression, after.astimezone(UTC)).get_next(datetime)
    return fire.astimezone(UTC)


_DAYS = ("Sundays", "Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays")


def in_words(expression: str) -> str:
    """The common shapes of a five-field cron expression in words; others as the expression."""
    fields = expression.split()
    if len(fields) != 5:
        return f"cron {expression} (UTC)"
    minute, hour, dom, month, dow = fields
    if (dom, month) != ("*", "*"):
        return f"cron {expression} (UTC)"
    if dow == "*" and hour == "*":
        if minute == "*":
            return "every minute"
        if minute.startswith("*/") and minute[2:].isdigit():
            return f"every {int(minute[2:])} minutes"
        if minute.isdigit():
            return "hourly" if minute == "0" else f"hourly at minute {int(minute)}"
    if dow == "*" and minute.isdigit() and hour.startswith("*/") and hour[2:].isdigit():
        return f"every {int(hour[2:])} hours" + ("" if minute == "0" else f" at minute {minute}")
    if minute.isdigit() and hour.isdigit():
        at = f"{int(hour):02d}:{int(minute):02d} UTC"
        if dow == "*":
            return f"daily at {at}"
        if dow.isdigit() and int(dow) <= 7:
            return f"weekly on {_DAYS[int(dow) % 7]} at {at}"
    return f"cron {expression} (UTC)"


async def replicas(session: AsyncSession) -> dict[str, ScheduleReplica]:
    return {row.job: row for row in await session.scalars(select(ScheduleReplica))}


def known_names(copies: dict[str, ScheduleReplica]) -> list[str]:
    """The seed's processes in order, then any job only the scheduler has announced."""
    return [*PROCESSES, *sorted(set(copies) - set(PROCESSES))]
