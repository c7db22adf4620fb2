"""Priority overtaking: a high task queued behind 10,000 low ones at a busy consumer.

For each prefetch the probe service works through a backlog of low tasks (2 ms of work each,
as many at once as the prefetch allows); once busy, one high task is queued. The line's figure
is how many low tasks finished after the high one was queued and before it did — at most about
one prefetch, since the consumer already holds that many when the high one arrives — and the
time column is how long the high one took. The probe's database is PostgreSQL, as deployed;
one SQLite line shows what its single writer does to the order in which concurrent handlers
finish. docs/adr/0010-prefetch-and-priority.md keeps the figures that chose the prefetch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.broker import PG_SERVER, _pg_admin
from bench.common import PREFETCH, SectionResult, amqp_url
from prs_shared.testing.overtaking import measure_overtaking
from prs_shared.testing.worker import ProbeSettings

LOWS = 10_000
BUSY_MS = 2
# (prefetch, batch size, database): one at a time at several prefetches, the batched runtime.
SHAPES = (
    (1, 1, "postgresql"),
    (16, 1, "postgresql"),
    (PREFETCH, 1, "postgresql"),
    (256, 1, "postgresql"),
    (PREFETCH, 16, "postgresql"),
    (PREFETCH, 1, "sqlite"),
)


async def _one(run_id: str, prefetch: int, batch_size: int, backend: str) -> SectionResult:
    name = f"p{prefetch}b{batch_size}{backend[:2]}"
    label = (
        f"priority (SQLite): prefetch {prefetch}"
        if backend == "sqlite"
        else f"priority: prefetch {prefetch}, batch {batch_size}"
    )
    key = f"priority_{name}"
    database = f"prs_bench_{run_id}_{name}"
    with tempfile.TemporaryDirectory(prefix="prs-bench-priority-") as data:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(data) / 'probe.sqlite3'}"
        else:
            await _pg_admin([f'CREATE DATABASE "{database}"'])
            url = f"{PG_SERVER}/{database}"
        settings = ProbeSettings(
            amqp_url=amqp_url(),
            namespace=f"bench{run_id}{name}.",
            database_url=url,
            prefetch=prefetch,
            batch_size=batch_size,
            heartbeat_interval=60,
            shutdown_grace=5,
        )
        try:
            measured = await measure_overtaking(settings, lows=LOWS, busy_ms=BUSY_MS)
        except Exception as exc:  # a section failing is reported, the run goes on
            return SectionResult(key, label, "ahead", LOWS, error=repr(exc))
        finally:
            if backend != "sqlite":
                await _pg_admin([f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'])
    return SectionResult(
        key=key,
        label=label,
        unit="ahead",
        n=LOWS,
        completed=1,
        seconds=measured.wait_s,
        rate=float(measured.overtaken_by),
        method=(
            f"low tasks finishing before one high task queued behind {measured.backlog} waiting "
            f"low ones ({BUSY_MS} ms of work each, classic queue); time: queued to finished; "
            f"within one prefetch: {'yes' if measured.within_one_prefetch else 'NO'}"
        ),
        extra={"backlog": measured.backlog, "queue_type": measured.queue_type},
    )


async def run_priority(run_id: str) -> list[SectionResult]:
    return [await _one(run_id, *shape) for shape in SHAPES]
