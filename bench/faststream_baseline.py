"""The FastStream peer: a no-op subscriber with FastStream's RabbitMQ broker, measured like the raw
line (same body size, confirm windows, prefetch and durability), so FastStream/raw is what the
framework costs on top of aio-pika and PRS/FastStream what a task costs on top of a bare consumer.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from importlib.metadata import version
from pathlib import Path

import aio_pika
from faststream.rabbit import RabbitBroker

from bench.broker import PUBLISH_WINDOW, command_size, phase_timeout, recv_report
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
from bench.cpu import CpuMeter, other_load_pct, per_task_ms
from bench.faststream_worker import PREFETCH


async def _publish(broker: RabbitBroker, queue: str, count: int, body_size: int) -> float:
    """Publish ``count`` persistent messages in confirm windows; returns the first send time."""
    first = 0.0
    for start in range(0, count, PUBLISH_WINDOW):
        size = min(PUBLISH_WINDOW, count - start)
        sent = wall()
        first = first or sent
        body = f"{sent:.6f} ".encode().ljust(body_size, b"x")
        # FastStream's channels confirm publishes by default; each call returns once confirmed.
        await asyncio.gather(
            *(broker.publish(body, queue=queue, persist=True, mandatory=True) for _ in range(size))
        )
    return first


async def _delete_queue(queue: str) -> None:
    connection = await aio_pika.connect(amqp_url())
    try:
        channel = await connection.channel()
        await channel.queue_delete(queue)
    finally:
        await connection.close()


async def run_faststream(n: int, run_id: str, log_dir: Path) -> SectionResult:
    result = SectionResult(
        key="faststream",
        label=f"FastStream {version('faststream')}",
        unit="msgs/s",
        n=n,
        method=(
            "RabbitBroker.publish, persistent, mandatory, publisher confirms awaited per window "
            f"of {PUBLISH_WINDOW}; no-op subscriber on a durable queue in its own process, "
            f"prefetch {PREFETCH}, AckPolicy.ACK (ack after the handler returns); first publish "
            "until the subscriber handled all N; latency publish to handled"
        ),
    )
    queue = f"bench{run_id}.faststream"
    body_size = command_size()
    warmup = warmup_count(n)
    receiver, sender = multiprocessing.Pipe(duplex=False)
    broker = RabbitBroker(amqp_url(), log_level=logging.DEBUG)
    worker: Child | None = None
    try:
        await broker.connect()
        worker = Child(
            "faststream-worker",
            [
                python(),
                "-m",
                "bench.faststream_worker",
                queue,
                str(sender.fileno()),
                f"{warmup},{n}",
            ],
            child_env({}),
            log_dir,
            pass_fds=[sender.fileno()],
        )
        # Only the worker holds the writing end now: if it dies, reading reports end of file.
        sender.close()
        await recv_report(receiver, 60)
        await _publish(broker, queue, warmup, body_size)
        await recv_report(receiver, phase_timeout(warmup))
        meter = CpuMeter({os.getpid(): "bench publisher", worker.proc.pid: "faststream worker"})
        meter.start()
        first = await _publish(broker, queue, n, body_size)
        _, last, latencies = await recv_report(receiver, phase_timeout(n))
        spent = meter.stop()
        result.completed = len(latencies)
        result.seconds = last - first
        result.rate = n / result.seconds
        result.p50_ms, result.p99_ms = latency_summary(latencies)
        result.extra = {
            "warmup": warmup,
            "body_bytes": body_size,
            "cpu_ms_per_task": per_task_ms(spent, n),
            "other_load_pct": other_load_pct(spent, meter.elapsed),
        }
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        if worker is not None:
            tail = worker.log_tail(10)
            if tail:
                result.extra["faststream-worker_log_tail"] = tail
    finally:
        try:
            if worker is not None:
                worker.stop()
            sender.close()
            receiver.close()
            await broker.stop()
        finally:
            await _delete_queue(queue)
    return result
