"""Recycling a worker process: after so many tasks, or past so much memory, start afresh.

The seed's Celery workers had ``max_tasks_per_child``; a long-lived process collects leaks
(a library's cache, a thread a hard time limit left running, fragmentation) that only a new
process sheds. A recycle drains like SIGTERM, then replaces the process image in place
(``os.execv``): the PID stays, so honcho (which stops everything when one process exits) and
docker keep supervising the same process. docs/adr/0009-time-limits-and-recycling.md.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from prometheus_client import Counter

log = logging.getLogger(__name__)

RECYCLES_ENV = "PRS_WORKER_RECYCLES"
"""How often this process has recycled; set for the new image by :func:`reexec`."""
MEMORY_CHECK_SECONDS = 1.0
"""Resident memory is read after a task at most this often."""

RECYCLES = Counter(
    "prs_worker_recycles",
    "Times this worker process restarted itself in place (carried over the restart).",
    ["service"],
)


def resident_bytes() -> int | None:
    """Resident memory of this process now, from /proc; None where there is no /proc.

    Not ``getrusage``'s ``ru_maxrss``: that is a peak, and Linux keeps it over ``execve``, so
    a recycled process would look as large as its predecessor's worst moment forever.
    """
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def recycles_so_far() -> int:
    raw = os.environ.get(RECYCLES_ENV, "0")
    return int(raw) if raw.isdecimal() else 0


@dataclass
class RecyclePolicy:
    """Decides, after each settled delivery, whether the worker should recycle."""

    max_tasks: int = 0
    """0: no limit."""
    max_memory_bytes: int = 0
    """0: no limit."""
    memory: Callable[[], int | None] = resident_bytes
    clock: Callable[[], float] = time.monotonic
    _next_memory_check: float = field(default=0.0, init=False)

    @property
    def enabled(self) -> bool:
        return bool(self.max_tasks or self.max_memory_bytes)

    def reason(self, settled: int) -> str | None:
        """Why to recycle after ``settled`` deliveries, or None to go on."""
        if self.max_tasks and settled >= self.max_tasks:
            return f"{settled} tasks (PRS_MAX_TASKS_PER_WORKER={self.max_tasks})"
        if self.max_memory_bytes:
            now = self.clock()
            if now < self._next_memory_check:
                return None
            self._next_memory_check = now + MEMORY_CHECK_SECONDS
            rss = self.memory()
            if rss is not None and rss > self.max_memory_bytes:
                return (
                    f"{rss / 2**20:.0f} MB resident "
                    f"(PRS_MAX_MEMORY_MB={self.max_memory_bytes // 2**20})"
                )
        return None


def reexec(hold: Collection[signal.Signals] = ()) -> None:
    """Replace this process with a fresh run of the same command line (same PID); no return.

    The signals in ``hold`` are blocked across the exec: the mask survives it, so a SIGTERM
    sent while the new image starts waits until it can be handled instead of killing it.
    """
    os.environ[RECYCLES_ENV] = str(recycles_so_far() + 1)
    signal.pthread_sigmask(signal.SIG_BLOCK, hold)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # orig_argv keeps interpreter options and ``-m module``; the interpreter is this one.
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606
