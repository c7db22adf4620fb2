"""One process per SQLite file: a second replica is refused instead of sharing the file.

SQLite is the embedded default for one machine. Two service processes on one file would both
consume, both relay the outbox without row locks (SQLite has none) and both run the scheduler's
lease on a table only one of them can write at a time — the failure is quiet and partial. So
each service process holds an exclusive ``flock`` on ``<database>.lock`` while it runs; another
process finds it taken and stops with a message saying what to do instead. The kernel drops
the lock when the holder exits, however it exits, so a killed process never leaves a stale
lock behind. Within one process the lock is shared (tests run several hosts side by side).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from prs_shared.db.engine import is_sqlite

# Long enough for a restarted process to outlive its predecessor's last seconds.
WAIT_SECONDS = 15.0
_held: dict[Path, tuple[int, int]] = {}
"""Lock file → (descriptor, holders in this process)."""


class DatabaseInUse(Exception):
    """Another process holds the SQLite database."""


def lock_path(url: str) -> Path | None:
    """The lock file of a SQLite file database; None for anything else (memory, PostgreSQL)."""
    if not is_sqlite(url):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).resolve().with_name(Path(database).name + ".lock")


async def claim(url: str, wait: float = WAIT_SECONDS) -> Callable[[], None]:
    """Hold the database for this process; returns the release. Raises DatabaseInUse."""
    path = lock_path(url)
    if path is None:
        return lambda: None
    if path in _held:
        fd, count = _held[path]
        _held[path] = (fd, count + 1)
        return lambda: _release(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if asyncio.get_running_loop().time() >= deadline:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise DatabaseInUse(
                    f"the SQLite database {path.with_suffix('')} is in use by another process "
                    f"(pid {holder}); SQLite serves one replica of a service — run one, or "
                    "point the service's DATABASE_URL at PostgreSQL to run several"
                ) from None
            await asyncio.sleep(0.2)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _held[path] = (fd, 1)
    return lambda: _release(path)


def _release(path: Path) -> None:
    held = _held.get(path)
    if held is None:
        return
    fd, count = held
    if count > 1:
        _held[path] = (fd, count - 1)
        return
    del _held[path]
    os.close(fd)  # closing the descriptor drops the lock
