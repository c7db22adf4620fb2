"""The overview: health of every dependency and service, the last hour's throughput and failure
rate, queues, dead letters and workers, from the same functions the API's routes run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.api.deps import SessionDep, StateDep
from gateway.api.routes.dead_letters import list_dead_letters
from gateway.api.routes.monitoring import queues, workers
from gateway.console.web import Console, page
from gateway.health import system_health
from gateway.models import Task
from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.messages import TaskStatus

router = APIRouter()

HOUR = timedelta(hours=1)
BUCKETS = 12
"""Five-minute bars over the last hour."""
FAILED = {TaskStatus.FAILED.value, TaskStatus.DEAD_LETTERED.value}


@dataclass(frozen=True)
class Bar:
    """One bar of a chart, in the SVG's own units (100 wide, 40 high)."""

    x: float
    height: float
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    total: str
    bars: list[Bar]


async def finished_last_hour(
    session: AsyncSession, organization_id: str | None, now: datetime
) -> tuple[list[int], list[int]]:
    """Tasks finished, and of those failed, per five-minute bucket of the last hour."""
    conditions = [Task.finished_at >= now - HOUR]
    if organization_id is not None:
        conditions.append(Task.organization_id == organization_id)
    done, failed = [0] * BUCKETS, [0] * BUCKETS
    width = HOUR / BUCKETS
    for finished_at, status in await session.execute(
        select(Task.finished_at, Task.status).where(*conditions)
    ):
        if finished_at is None:
            continue
        index = min(int((finished_at - (now - HOUR)) / width), BUCKETS - 1)
        done[index] += 1
        failed[index] += status in FAILED
    return done, failed


def chart(title: str, values: list[float], total: str, unit: str) -> Chart:
    top = max(values) or 1
    step = 100 / len(values)
    bars = [
        Bar(round(i * step, 2), round(40 * v / top, 2), f"{v:g}{unit}")
        for i, v in enumerate(values)
    ]
    return Chart(title, total, bars)


def charts(done: list[int], failed: list[int]) -> list[Chart]:
    rates = [round(100 * f / d, 1) if d else 0.0 for d, f in zip(done, failed, strict=True)]
    all_done, all_failed = sum(done), sum(failed)
    overall = f"{100 * all_failed / all_done:.1f}%" if all_done else "—"
    return [
        chart("Finished per 5 minutes", [float(d) for d in done], f"{all_done} in the hour", ""),
        chart("Failure rate per 5 minutes", rates, f"{overall} in the hour", "%"),
    ]


@router.get("/overview")
async def overview(
    request: Request, session: SessionDep, state: StateDep, console: Console
) -> HTMLResponse:
    principal = console.principal
    health = await system_health(state.host, state.settings, principal.organization_id)
    done, failed = await finished_last_hour(session, principal.organization_id, utcnow())
    dead_letters = None
    if console.may_change:
        dead_letters = (await list_dead_letters(session, principal, None, None, False, 1, 0)).total
    return page(
        request,
        "overview.html",
        console,
        health=health,
        charts=charts(done, failed),
        queues=await queues(state, session, principal),
        workers=await workers(state, session, principal),
        dead_letters=dead_letters,
    )
