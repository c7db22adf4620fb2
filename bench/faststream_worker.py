"""The FastStream peer's worker: a no-op subscriber on one durable queue.

Started by the benchmark as ``python -m bench.faststream_worker QUEUE FD PHASES``: it consumes
QUEUE with FastStream's RabbitMQ broker (prefetch as for the other lines, ack after the handler
returned) and reports on the pipe end FD, as the raw line's consumer does: ``ready`` once it
consumes, then ``done`` with the time of the last message and every message's latency after each
phase's count (PHASES: comma-separated counts) of messages.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from multiprocessing.connection import Connection

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue

from bench.common import PREFETCH, amqp_url


async def serve(url: str, queue: str, phases: list[int], conn: Connection) -> None:
    broker = RabbitBroker(
        url,
        default_channel=Channel(prefetch_count=PREFETCH),
        # FastStream logs every message received and processed at this level; DEBUG keeps those
        # lines out of the measurement (the log level is WARNING), as Celery's and the services'.
        log_level=logging.DEBUG,
    )
    remaining = list(phases)
    latencies: list[float] = []

    @broker.subscriber(RabbitQueue(queue, durable=True), ack_policy=AckPolicy.ACK)
    async def handle(body: bytes) -> None:
        # No work; the send time travels in the body, as on the raw line.
        now = time.time()
        latencies.append(now - float(body.split(b" ", 1)[0]))
        if remaining and len(latencies) == remaining[0]:
            conn.send(("done", now, list(latencies)))
            remaining.pop(0)
            latencies.clear()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await broker.start()
    try:
        conn.send(("ready", 0.0, []))
        await stop.wait()
    finally:
        await broker.stop()
        conn.close()


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.WARNING)
    queue, fd, phases = argv[0], int(argv[1]), [int(p) for p in argv[2].split(",")]
    asyncio.run(serve(amqp_url(), queue, phases, Connection(fd, readable=False)))


if __name__ == "__main__":
    main(sys.argv[1:])
