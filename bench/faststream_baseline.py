"""The FastStream peer: a no-op subscriber with FastStream's RabbitMQ broker, measured like the raw
line (same body size, confirm windows, prefetch and durability), so FastStream/raw is what the
framework costs on top of aio-pika and PRS/FastStream what a task costs on top of a bare consumer.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Awaitable
from importlib.metadata import version
from pathlib import Path

import aio_pika
from faststream.rabbit import RabbitBroker

from bench.broker import PUBLISH_WINDOW, PublishBody, measure_consumer
from bench.common import PREFETCH, Child, SectionResult, amqp_url, child_env, python, warmup_count


def _publisher(broker: RabbitBroker, queue: str) -> PublishBody:
    def publish(body: bytes) -> Awaitable[object]:
        # FastStream's channels confirm publishes by default; each call returns once confirmed.
        return broker.publish(body, queue=queue, persist=True, mandatory=True)

    return publish


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
        await measure_consumer(
            result,
            _publisher(broker, queue),
            receiver,
            {os.getpid(): "bench publisher", worker.proc.pid: "faststream worker"},
            warmup=warmup,
            ready_timeout=60,
        )
    except Exception as exc:
        result.failed(exc, [worker] if worker else [])
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
