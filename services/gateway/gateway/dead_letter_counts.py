"""How many dead letters wait, by queue: the one number the API, the CLI, the dashboard and the
alert rules share.

The ``<queue>.dlq`` queues are drained by the gateway's archive within milliseconds, so their
depth reads 0 while hundreds of dead letters wait for someone to look at them. What waits is the
archive's rows that have not been replayed; this module counts them for the views (scoped to the
caller's organization like every other view) and for the ``prs_dead_letter_archive`` gauge.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import DeadLetter

log = logging.getLogger(__name__)

DEAD_LETTER_ARCHIVE = Gauge(
    "prs_dead_letter_archive",
    "Dead letters archived by the gateway and not replayed, by the queue they died in. Every "
    "gateway replica reads the same table: aggregate with max, not sum.",
    ["queue"],
)


async def waiting_by_queue(session: AsyncSession, organization_id: str | None) -> dict[str, int]:
    """Unreplayed dead letters per queue; only ``organization_id``'s when it is not None."""
    scope = [] if organization_id is None else [DeadLetter.organization_id == organization_id]
    rows = await session.execute(
        select(DeadLetter.queue, func.count())
        .where(DeadLetter.replayed_at.is_(None), *scope)
        .group_by(DeadLetter.queue)
    )
    return {str(queue): int(n) for queue, n in rows}


async def refresh_gauge(session: AsyncSession, queues: Iterable[str]) -> None:
    """Set the gauge from the archive; every platform queue gets a series, 0 when none wait (an
    alert rule then sees 0, not an absent series). Left as it was if the database fails, so that
    /metrics still answers."""
    try:
        counts = await waiting_by_queue(session, None)
    except Exception as exc:
        log.warning("dead-letter archive not counted: %s", type(exc).__name__)
        return
    DEAD_LETTER_ARCHIVE.clear()
    for queue in queues:
        DEAD_LETTER_ARCHIVE.labels(queue).set(0)
    for queue, n in counts.items():
        DEAD_LETTER_ARCHIVE.labels(queue).set(n)
