"""CPU time spent by each part of a section during its timed phase, read from ``/proc``.

On a shared two-core machine a rate alone cannot say whether a system is slow or was starved;
CPU seconds per task by component (worker, gateway, broker, database, everything else) can.
Linux only: elsewhere the meter records nothing and the figures are simply absent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# Server processes recognised by their command name. RabbitMQ and Redis are one process each and
# count whole (other users of the same broker included); PostgreSQL runs a process per
# connection, so only its shared background processes and the backends of this run's databases
# (named in their process title) count as "postgresql".
SERVERS = {"beam.smp": "rabbitmq", "postgres": "postgresql", "redis-server": "redis"}
PG_SHARED = ("checkpointer", "background writer", "walwriter", "autovacuum launcher", "logger")


@dataclass(frozen=True)
class _Proc:
    comm: str
    ppid: int
    seconds: float
    title: str


def _ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100


def _processes() -> dict[int, _Proc]:
    ticks = _ticks()
    found: dict[int, _Proc] = {}
    if not PROC.is_dir():
        return found
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue  # exited since the listing
        # The command name is parenthesised and may contain spaces; fields follow the last ')'.
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        utime, stime = int(fields[11]), int(fields[12])
        title = ""
        if comm == "postgres":
            try:
                title = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
        found[int(entry.name)] = _Proc(comm, int(fields[1]), (utime + stime) / ticks, title)
    return found


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0].split()
    except OSError:
        return 0.0
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _ticks()


class CpuMeter:
    """Snapshot at ``start``, difference at ``stop``, grouped by role.

    ``roles`` names root processes (the benchmark itself, its service children); their
    descendants count towards the same role, which is how Celery's pool processes count as the
    Celery worker. Processes that exit inside the window are not counted.
    """

    def __init__(self, roles: Mapping[int, str], database_marker: str | None = None) -> None:
        self._roles = dict(roles)
        self._marker = database_marker
        self._before: dict[int, _Proc] = {}
        self._busy_before = 0.0
        self._started = 0.0
        self.elapsed = 0.0

    def start(self) -> None:
        self._before = _processes()
        self._busy_before = _machine_busy_seconds()
        self._started = time.monotonic()

    def stop(self) -> dict[str, float]:
        """CPU seconds per role, plus ``other``: whatever else kept the machine busy (other
        users of the machine, kernel threads, processes that exited in the window)."""
        after = _processes()
        busy = _machine_busy_seconds() - self._busy_before
        self.elapsed = time.monotonic() - self._started
        if not after:
            return {}
        spent: dict[str, float] = {}
        for pid, proc in after.items():
            before = self._before.get(pid)
            delta = proc.seconds - (before.seconds if before and before.comm == proc.comm else 0)
            if delta <= 0:
                continue
            role = self._role(pid, after)
            if role is not None:
                spent[role] = spent.get(role, 0.0) + delta
        spent["other"] = max(0.0, busy - sum(spent.values()))
        return spent

    def _role(self, pid: int, procs: Mapping[int, _Proc]) -> str | None:
        own = procs[pid]
        if own.comm == "postgres" and not self._counts_postgres(own.title):
            return None
        current = pid
        for _ in range(64):  # ancestry is short; the bound only guards against a cycle
            if current in self._roles:
                return self._roles[current]
            proc = procs.get(current)
            if proc is None:
                break
            if proc.comm in SERVERS:
                return SERVERS[proc.comm]
            if proc.ppid <= 1:
                break
            current = proc.ppid
        return None

    def _counts_postgres(self, title: str) -> bool:
        if self._marker is not None and self._marker in title:
            return True
        # Titles read "postgres: 15/main: walwriter" and the like.
        return any(title.rstrip().endswith(f": {name}") for name in PG_SHARED)


def per_task_ms(spent: Mapping[str, float], tasks: int) -> dict[str, float]:
    return {role: round(seconds * 1000 / tasks, 3) for role, seconds in sorted(spent.items())}


def other_load_pct(spent: Mapping[str, float], elapsed: float) -> float | None:
    """Share of the machine's CPU capacity taken by everything outside the section."""
    cpus = os.cpu_count() or 1
    if "other" not in spent or elapsed <= 0:
        return None
    return round(100 * spent["other"] / (elapsed * cpus), 1)
