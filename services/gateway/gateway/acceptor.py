"""Group commit for queued tasks: many requests, one transaction.

Each queuing request needs its task row and outbox row committed before it may answer 202. With
a transaction per request, the database round trips (begin, two inserts, commit) dominate the
endpoint. Here requests hand their rows to one writer that commits whatever has accumulated
while its previous commit ran — one row at a time when traffic is light, hundreds when it is
heavy — and every request waits for the commit that carried its rows. Durability per request is
unchanged: nobody is answered before their rows are committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert

from gateway.models import IdempotencyKey, Task
from gateway.task_events import add_events, queued_event
from prs_shared.db.engine import SessionFactory
from prs_shared.db.tables import outbox

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    task: dict[str, Any]
    outbox_rows: list[dict[str, Any]]
    idempotency: dict[str, Any] | None
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class TaskAcceptor:
    def __init__(
        self, sessions: SessionFactory, on_committed: Callable[[], None], max_batch: int = 500
    ) -> None:
        self._sessions = sessions
        self._on_committed = on_committed
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._runner = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.done.done():
                pending.done.set_exception(RuntimeError("gateway stopping"))

    async def submit(
        self,
        task: dict[str, Any],
        outbox_rows: list[dict[str, Any]],
        idempotency: dict[str, Any] | None = None,
    ) -> None:
        """Return once the task row, its outbox rows and its idempotency key are committed;
        raise if they were not (a key another request took first is one such failure)."""
        pending = _Pending(task, outbox_rows, idempotency)
        await self._queue.put(pending)
        await pending.done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except Exception:
                if len(batch) == 1:
                    self._settle(batch, error=True)
                    continue
                # One bad row must not fail the others: commit them one by one.
                log.warning("group commit of %d tasks failed; committing singly", len(batch))
                for pending in batch:
                    try:
                        await self._commit([pending])
                    except Exception:
                        self._settle([pending], error=True)
                continue

    async def _commit(self, batch: list[_Pending]) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(insert(Task), [p.task for p in batch])
            await add_events(session, [queued_event(p.task) for p in batch])
            rows = [row for p in batch for row in p.outbox_rows]
            if rows:
                await session.execute(insert(outbox), rows)
            keys = [p.idempotency for p in batch if p.idempotency is not None]
            if keys:
                await session.execute(insert(IdempotencyKey), keys)
        self._on_committed()
        self._settle(batch)

    @staticmethod
    def _settle(batch: list[_Pending], *, error: bool = False) -> None:
        for pending in batch:
            if pending.done.done():
                continue
            if error:
                pending.done.set_exception(RuntimeError("the task could not be recorded"))
            else:
                pending.done.set_result(None)
