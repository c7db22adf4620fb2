"""Wakes the console's live task lists when the registry has applied changes.

Each browser's event stream holds a one-slot queue: a change marks it dirty and the stream then
re-reads its page of tasks, so changes coalesce and a slow browser holds one pending wake-up, not a
growing backlog. A wake-up names the organization changed; a scoped stream wakes only for its own.
Streams also re-read on a short interval, so a change is shown even when nothing announced it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class TaskFeed:
    """In-process broadcaster from the registry's applied changes to console streams."""

    def __init__(self) -> None:
        self._listeners: dict[asyncio.Queue[None], str | None] = {}

    @contextmanager
    def listen(self, organization_id: str | None) -> Iterator[asyncio.Queue[None]]:
        """A queue woken by changes visible to ``organization_id`` (None: every organization)."""
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._listeners[queue] = organization_id
        try:
            yield queue
        finally:
            del self._listeners[queue]

    def changed(self, organizations: Iterable[str | None]) -> None:
        """Tasks of these organizations changed and are committed."""
        orgs = set(organizations)
        for queue, scope in self._listeners.items():
            if (scope is None or scope in orgs) and queue.empty():
                queue.put_nowait(None)

    @property
    def listeners(self) -> int:
        return len(self._listeners)
