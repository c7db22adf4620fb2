"""The Dramatiq peer: the RabbitMQ broker with publisher confirms, 2 worker processes of 8 threads,
each task recording its completion in Redis; same broker, durability and Redis as Celery's line."""

from __future__ import annotations

import os
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dramatiq
import redis
from dramatiq.common import dq_name, xq_name

from bench.common import Child, SectionResult, amqp_url, child_env, python, wall, warmup_count
from bench.cpu import CpuMeter
from bench.dramatiq_app import BROKER_ENV, QUEUE_ENV, REDIS_ENV, make_broker

PROCESSES = 2
THREADS = 8
# As for the other lines: the completion count in Redis is read this often once all are sent.
POLL_INTERVAL = 0.02


def _wait_consumers(broker: Any, worker: Child, queue: str, timeout: float = 60.0) -> None:
    """Ready once every worker process consumes the queue (declared before the worker starts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.check_alive()
        declared = broker.channel.queue_declare(queue=queue, passive=True)
        if declared.method.consumer_count >= PROCESSES:
            return
        time.sleep(0.2)
    raise TimeoutError(
        f"Dramatiq workers not consuming after {timeout:.0f}s (log: {worker.log_path})"
    )


def _run_tasks(
    actor: dramatiq.Actor[[str, float], None],
    client: redis.Redis,
    key: str,
    count: int,
    timeout: float,
    worker: Child,
) -> tuple[float, float, int]:
    """Send ``count`` tasks that append to ``key``; returns (first send, the start of the first
    read that found all of them done, reads)."""
    first = wall()
    for _ in range(count):
        # What an application does: one send per task, each confirmed by the broker.
        actor.send(key, wall())
    deadline = time.monotonic() + timeout
    polls = 0
    while True:
        started = wall()
        done: int = client.llen(key)
        polls += 1
        if done >= count:
            return first, started, polls
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done} of {count} Dramatiq tasks done after {timeout:.0f}s")
        worker.check_alive()
        time.sleep(POLL_INTERVAL)


def _delete_queues(broker: Any, queue: str) -> None:
    channel = broker.channel
    for name in (queue, dq_name(queue), xq_name(queue)):
        channel.queue_delete(name)


def run_dramatiq(n: int, run_id: str, log_dir: Path, redis_url: str) -> SectionResult:
    result = SectionResult(
        key="dramatiq",
        label=f"Dramatiq {version('dramatiq')}",
        unit="tasks/s",
        n=n,
        method=(
            f"actor sent with send() from one thread; {PROCESSES} worker processes x {THREADS} "
            f"threads (prefetch {THREADS * 2} each), persistent messages, durable queue, "
            "publisher confirms, ack after the actor returns; each task RPUSHes its send-to-done "
            f"time to a Redis list ({redis_url}); first send until a read (every "
            f"{POLL_INTERVAL * 1000:.0f} ms once all are sent) finds all N; latency send to done "
            "as the task recorded it"
        ),
    )
    queue = f"bench{run_id}.dramatiq"
    broker, actor = make_broker(amqp_url(), queue)
    client = redis.Redis.from_url(redis_url)
    keys = [f"bench{run_id}:dramatiq:warmup", f"bench{run_id}:dramatiq:timed"]
    worker: Child | None = None
    try:
        # Declared here (with Dramatiq's delay and dead-letter queues) so readiness can be probed.
        broker.declare_queue(queue, ensure=True)
        worker = Child(
            "dramatiq-worker",
            [
                python(),
                "-m",
                "dramatiq",
                "bench.dramatiq_app:setup",
                f"--processes={PROCESSES}",
                f"--threads={THREADS}",
                "--queues",
                queue,
                # Within Child.stop's grace, so no orphaned worker processes remain.
                "--worker-shutdown-timeout=10000",
            ],
            child_env({QUEUE_ENV: queue, BROKER_ENV: amqp_url(), REDIS_ENV: redis_url}),
            log_dir,
        )
        _wait_consumers(broker, worker, queue)
        warmup = warmup_count(n)
        _run_tasks(actor, client, keys[0], warmup, 60.0 + warmup / 10, worker)
        meter = CpuMeter(
            {
                os.getpid(): "bench publisher+poller",
                worker.proc.pid: f"dramatiq worker ({PROCESSES + 1} processes)",
            }
        )
        meter.start()
        first, last, polls = _run_tasks(actor, client, keys[1], n, 60.0 + n / 20, worker)
        spent = meter.stop()
        latencies = [float(v) for v in client.lrange(keys[1], 0, -1)]
        result.timed(
            first,
            last,
            latencies,
            spent,
            meter.elapsed,
            warmup=warmup,
            result_polls=polls,
            processes=PROCESSES,
            threads=THREADS,
        )
    except Exception as exc:
        result.failed(exc, [worker] if worker else [])
    finally:
        try:
            if worker is not None:
                worker.stop()
            _delete_queues(broker, queue)
            client.delete(*keys)
        finally:
            client.close()
            broker.close()
    return result
