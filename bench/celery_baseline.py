"""The Celery baseline: the seed's Celery settings, prefork workers, Redis results, same broker."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import redis

from bench.celery_app import BACKEND_ENV, BROKER_ENV, NOOP, QUEUE_ENV, make_app
from bench.common import (
    Child,
    SectionResult,
    amqp_url,
    child_env,
    latency_summary,
    python,
    wall,
    warmup_count,
)
from bench.cpu import CpuMeter

CONCURRENCY = 2
# Exchanges Celery's remote control declares (used here for the readiness ping); removed after
# the run unless they were there before it.
CONTROL_EXCHANGES = ("celery.pidbox", "reply.celery.pidbox")
RESULT_KEY_PREFIX = "celery-task-meta-"
# As for the project's registry: the result store is read this often while tasks complete.
POLL_INTERVAL = 0.02
# Results are read in send order, this many keys per MGET; the prefork pool runs tasks nearly in
# that order, so a poll stops at the first slice still waiting instead of reading all pending.
POLL_SLICE = 500


@dataclass
class _Watch:
    ids: list[str] = field(default_factory=list)
    sent: dict[str, float] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    polls: int = 0


def _watch_results(
    client: redis.Redis, watch: _Watch, expected: int, stop: threading.Event
) -> None:
    """Poll Redis until ``expected`` results are stored; runs beside the sending thread.

    A result returned by a read that started at ``t`` was stored before ``t``: ``t`` is when the
    result became ready, as a client polling for it would find it.
    """
    pending: list[str] = []
    taken = 0
    while len(watch.seen) + len(watch.failed) < expected and not stop.is_set():
        # The sender appends to ``ids``; reading up to a length taken first is safe without a
        # lock (appends never move earlier items).
        count = len(watch.ids)
        pending.extend(watch.ids[taken:count])
        taken = count
        started = wall()
        still: list[str] = []
        for offset in range(0, len(pending), POLL_SLICE):
            chunk = pending[offset : offset + POLL_SLICE]
            if still:
                still.extend(chunk)
                continue
            values = client.mget([RESULT_KEY_PREFIX + task_id for task_id in chunk])
            for task_id, value in zip(chunk, values, strict=True):
                if value is None:
                    still.append(task_id)
                    continue
                meta: dict[str, Any] = json.loads(value)
                if meta.get("status") != "SUCCESS":
                    watch.failed.append(task_id)
                    continue
                watch.seen[task_id] = started
                watch.done[task_id] = datetime.fromisoformat(meta["date_done"]).timestamp()
        pending = still
        watch.polls += 1
        time.sleep(POLL_INTERVAL)


def _run_tasks(
    app: Any, client: redis.Redis, count: int, timeout: float, every_id: list[str]
) -> tuple[_Watch, float]:
    watch = _Watch()
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch_results, args=(client, watch, count, stop), daemon=True
    )
    watcher.start()
    task = app.tasks[NOOP]
    first = 0.0
    try:
        for _ in range(count):
            task_id = str(uuid4())
            sent = wall()
            first = first or sent
            watch.sent[task_id] = sent
            watch.ids.append(task_id)
            every_id.append(task_id)
            # What a view of the seed does: apply_async, one message per task.
            task.apply_async(task_id=task_id)
        watcher.join(timeout)
    finally:
        stop.set()
        watcher.join(5)
    if watch.failed:
        raise RuntimeError(f"{len(watch.failed)} Celery tasks did not succeed")
    if len(watch.seen) < count:
        raise TimeoutError(f"only {len(watch.seen)} of {count} Celery results after {timeout:.0f}s")
    return watch, first


def _wait_worker(app: Any, worker: Child, node: str, timeout: float = 60.0) -> None:
    """Ready when the worker answers a remote-control ping (it consumes its queue by then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.check_alive()
        if app.control.ping(destination=[node], timeout=0.5):
            return
    raise TimeoutError(f"Celery worker not ready after {timeout:.0f}s (log: {worker.log_path})")


def _forget(client: redis.Redis, task_ids: Sequence[str]) -> None:
    for offset in range(0, len(task_ids), 1000):
        chunk = task_ids[offset : offset + 1000]
        client.delete(*(RESULT_KEY_PREFIX + t for t in chunk))


def _existing_exchanges(app: Any, names: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for name in names:
        # A passive declare of a missing exchange closes its channel: one connection per probe.
        # An error is the "absent" answer being probed for.
        with app.connection_for_write() as connection, suppress(Exception):
            connection.default_channel.exchange_declare(name, "fanout", passive=True)
            found.add(name)
    return found


def _delete_broker_objects(app: Any, queue: str, exchanges: Sequence[str]) -> None:
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        channel.queue_delete(queue)
        for name in (queue, *exchanges):
            channel.exchange_delete(name)


def run_celery(n: int, run_id: str, log_dir: Path, redis_url: str) -> SectionResult:
    result = SectionResult(
        key="celery",
        label="Celery, seed settings",
        unit="tasks/s",
        n=n,
        method=(
            f"no-op task sent with apply_async from one thread; {CONCURRENCY} prefork "
            "processes, acks_late, prefetch multiplier 1, json, persistent messages, publisher "
            f"confirms, results in {redis_url}, read every {POLL_INTERVAL * 1000:.0f} ms; first "
            "send until all N results are stored; latency send to first poll that finds the result"
        ),
    )
    queue = f"bench{run_id}.celery"
    node = f"bench{run_id}@{socket.gethostname()}"
    app = make_app(amqp_url(), redis_url, queue)
    client = redis.Redis.from_url(redis_url)
    sent_ids: list[str] = []
    preexisting = _existing_exchanges(app, CONTROL_EXCHANGES)
    worker = Child(
        "celery-worker",
        [
            python(),
            "-m",
            "celery",
            "-A",
            "bench.celery_app",
            "worker",
            f"--concurrency={CONCURRENCY}",
            "--pool=prefork",
            "-Q",
            queue,
            "-n",
            node,
            "--loglevel=WARNING",
            # Start-up synchronisation and worker events add nothing to running tasks; without
            # them the worker starts sooner and does no less for each task.
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        child_env({QUEUE_ENV: queue, BROKER_ENV: amqp_url(), BACKEND_ENV: redis_url}),
        log_dir,
    )
    try:
        _wait_worker(app, worker, node)
        warmup = warmup_count(n)
        _run_tasks(app, client, warmup, 60.0 + warmup / 10, sent_ids)
        meter = CpuMeter(
            {os.getpid(): "bench client+poller", worker.proc.pid: "celery worker (3 processes)"}
        )
        meter.start()
        watch, first = _run_tasks(app, client, n, 60.0 + n / 20, sent_ids)
        spent = meter.stop()
        stored_p50, stored_p99 = latency_summary(
            [watch.done[t] - watch.sent[t] for t in watch.done]
        )
        result.timed(
            first,
            max(watch.seen.values()),
            [watch.seen[t] - watch.sent[t] for t in watch.seen],
            spent,
            meter.elapsed,
            warmup=warmup,
            result_polls=watch.polls,
            # date_done is stamped by the worker as it stores the result.
            send_to_date_done_p50_ms=stored_p50,
            send_to_date_done_p99_ms=stored_p99,
            concurrency=CONCURRENCY,
        )
    except Exception as exc:
        result.failed(exc, [worker])
    finally:
        worker.stop()
        try:
            created = [name for name in CONTROL_EXCHANGES if name not in preexisting]
            _delete_broker_objects(app, queue, created)
            _forget(client, sent_ids)
        finally:
            client.close()
            app.close()
    return result
