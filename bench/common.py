"""What every benchmark section shares: its result record, percentiles, child processes."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.cpu import other_load_pct, per_task_ms

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/"
# The services' default ``prefetch`` setting; every consumer measured uses the same, so that none
# gets a deeper pipeline than another.
PREFETCH = 64


def amqp_url() -> str:
    return os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)


def redacted(url: str) -> str:
    """The URL without its password, for printing and for the results file."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class SectionResult:
    """One line of the table; ``error`` set means the section did not finish."""

    key: str
    label: str
    unit: str
    n: int
    completed: int = 0
    seconds: float | None = None
    rate: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    method: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.rate is not None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def timed(
        self,
        first: float,
        last: float,
        latencies: Sequence[float],
        spent: Mapping[str, float],
        elapsed: float,
        **extra: Any,
    ) -> None:
        """The timed phase's figures: its N from ``first`` to ``last``, the latencies of those
        completed, the CPU ``spent`` by each part over ``elapsed`` seconds, and ``extra``."""
        self.completed = len(latencies)
        self.seconds = last - first
        self.rate = self.n / self.seconds
        self.p50_ms, self.p99_ms = latency_summary(latencies)
        self.extra = {
            **extra,
            "cpu_ms_per_task": per_task_ms(spent, self.n),
            "other_load_pct": other_load_pct(spent, elapsed),
        }

    def failed(self, exc: Exception, children: Sequence[Child] = ()) -> None:
        """Why the section did not finish, with the end of each child's log."""
        self.error = f"{type(exc).__name__}: {exc}"
        for child in children:
            tail = child.log_tail(10)
            if tail:
                self.extra[f"{child.name}_log_tail"] = tail


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; ``q`` in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(latencies_s: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    return percentile(latencies_s, 50) * 1000, percentile(latencies_s, 99) * 1000


def warmup_count(n: int) -> int:
    """A short untimed run first, so connection pools, statement caches and forked workers are
    warm on every side and the timed phase measures steady state rather than start-up."""
    return max(20, min(200, n // 20))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Child:
    """A service started as its own process, so that it gets its own core and event loop instead
    of sharing the benchmark's; its output goes to a log file shown when something fails."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own process group: a terminal Ctrl-C reaches the benchmark, which then stops its
            # children in order instead of all of them dying mid-transaction at once.
            start_new_session=True,
            # Descriptors the child reports on (a pipe end), left open across the exec.
            pass_fds=tuple(pass_fds),
        )

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with {code} (log: {self.log_path})")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (the services' clean shutdown), then SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """The current environment minus any ``PRS_*`` settings a developer shell may export (they
    would point a benchmark child at a real database or port), plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRS_")}
    env["AMQP_URL"] = amqp_url()
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def python() -> str:
    return sys.executable


def wall() -> float:
    """Wall-clock seconds; latencies compare it with UTC timestamps written by other processes
    on the same host, so it must be the same clock as ``datetime.now(UTC)``."""
    return time.time()
