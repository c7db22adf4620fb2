"""Metrics of the scheduler (in the process's one Prometheus registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

LEADER = Gauge("prs_scheduler_leader", "1 while this process holds the scheduler lease.")
RUNS = Counter("prs_scheduler_runs_total", "Runs staged, by job and source.", ["job", "source"])
