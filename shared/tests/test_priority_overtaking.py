"""A high-priority task overtakes a backlog of low ones at a busy consumer: it waits for at most
the prefetch the consumer already holds, not for the backlog (classic queues; quorum queues on
RabbitMQ 3.10 have no priorities, see docs/adr/0007-quorum-queues.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from prs_shared.testing.overtaking import measure_overtaking
from prs_shared.testing.worker import ProbeSettings

pytestmark = pytest.mark.asyncio

LOWS = 600
PREFETCH = 8


# PostgreSQL: the effect rows' order is the order tasks committed, and SQLite's one writer,
# polling for its lock on a loaded machine, can commit a task dozens of commits after it finished.
@pytest.mark.parametrize(
    ("database_url", "batch_size"), [("postgresql", 1), ("postgresql", 4)], indirect=True
)
async def test_a_high_task_queued_behind_hundreds_of_low_ones_waits_for_one_prefetch_at_most(
    probe_settings: Callable[..., ProbeSettings], batch_size: int
) -> None:
    measured = await measure_overtaking(
        probe_settings(prefetch=PREFETCH, batch_size=batch_size), lows=LOWS, busy_ms=2, warm=20
    )
    # Without priorities the high task would wait for the whole backlog (hundreds); with them,
    # for what the consumer already holds. Twice that allows for handlers that started together
    # committing in another order than they started, on a loaded machine.
    assert measured.backlog >= LOWS // 2, measured
    assert measured.overtaken_by <= 2 * (PREFETCH + batch_size), measured
