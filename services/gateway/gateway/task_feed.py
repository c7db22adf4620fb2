"""Tells whoever waits in this process that the registry has committed changes to tasks.

Two kinds of listener:

- the console's live task lists: each browser's event stream holds a one-slot queue, which a
  change visible to it marks dirty; the stream then re-reads its page, so changes coalesce and a
  slow browser holds one pending wake-up, not a growing backlog. A scoped stream wakes only for
  its own organization.
- a status request that waits for its task (``?wait=``): woken when that task changed.

Only this process's registry folds are seen; another gateway replica's folds are not, so every
listener also re-reads on a short interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class TaskFeed:
    """In-process broadcaster from the registry's committed changes to waiting readers."""

    def __init__(self) -> None:
        self._listeners: dict[asyncio.Queue[None], str | None] = {}
        self._watchers: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def listen(self, organization_id: str | None) -> Iterator[asyncio.Queue[None]]:
        """A queue woken by changes visible to ``organization_id`` (None: every organization)."""
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._listeners[queue] = organization_id
        try:
            yield queue
        finally:
            del self._listeners[queue]

    @contextmanager
    def watch(self, task_id: str) -> Iterator[asyncio.Event]:
        """An event set when ``task_id`` changed; clear it before waiting again."""
        event = asyncio.Event()
        self._watchers.setdefault(task_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._watchers[task_id]
            waiting.discard(event)
            if not waiting:
                del self._watchers[task_id]

    def changed(self, organizations: Iterable[str | None], task_ids: Iterable[str] = ()) -> None:
        """These tasks, of these organizations, changed and are committed."""
        orgs = set(organizations)
        for queue, scope in self._listeners.items():
            if (scope is None or scope in orgs) and queue.empty():
                queue.put_nowait(None)
        if self._watchers:
            for task_id in task_ids:
                for event in self._watchers.get(task_id, ()):
                    event.set()
