"""Prometheus metrics every service exports (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TASKS = Counter(
    "prs_tasks_total",
    "Messages handled, by type and outcome.",
    ["service", "type", "outcome"],
)
TASK_DURATION = Histogram(
    "prs_task_duration_seconds",
    "Handler time from receipt to commit.",
    ["service", "type"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RETRIES = Counter("prs_task_retries_total", "Retries scheduled.", ["service", "type"])
DEAD_LETTERS = Counter(
    "prs_dead_letters_total", "Messages dead-lettered.", ["service", "queue", "reason"]
)
IN_FLIGHT = Gauge("prs_tasks_in_flight", "Messages being handled now.", ["service"])
DUPLICATES = Counter(
    "prs_duplicates_total", "Redelivered messages absorbed by the inbox.", ["service", "type"]
)
OUTBOX_PUBLISHED = Counter("prs_outbox_published_total", "Outbox rows published and removed.")
OUTBOX_RELAY_ERRORS = Counter("prs_outbox_relay_errors_total", "Failed outbox relay passes.")
