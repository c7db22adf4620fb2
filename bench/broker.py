"""Broker-bound sections: the raw aio-pika ceiling and PRS Tasks end to end.

Both publish with publisher confirms, concurrently, awaiting the confirms of one window together;
both consume with manual acks at the same prefetch; all messages are persistent. The raw section
is what the broker and the client library can do with that durability and nothing else; the
project section adds everything a task costs on top (inbox transaction, lifecycle events, the
gateway's registry), so project/raw is the price of that bookkeeping.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Literal
from uuid import uuid4

import aio_pika
import asyncpg
import httpx
from aio_pika.abc import AbstractChannel, AbstractConnection, DeliveryMode
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.common import (
    Child,
    SectionResult,
    amqp_url,
    child_env,
    free_port,
    latency_summary,
    python,
    wall,
    warmup_count,
)
from gateway.models import Task
from prs_shared.messaging.envelope import Envelope, Priority
from prs_shared.messaging.messages import PING, TaskStatus
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.topology import Topology, delete_all

# Publishes in flight at once; each window's confirms are awaited together before the next, so
# the client never holds more unconfirmed messages than this.
PUBLISH_WINDOW = 500
# The services' default ``prefetch`` setting; the raw consumer uses the same so that neither side
# gets a deeper pipeline than the other.
PREFETCH = 64
# The deal-workflow service consumes ``workflow``; ping is a ``system`` command by default.
TASK_QUEUE = "workflow"
# How often the registry is read while tasks complete; it bounds the latency resolution.
POLL_INTERVAL = 0.01
# Registry rows commit in roughly the order of their ``updated_at`` (the worker's clock when it
# announced the outcome); each poll re-reads this much before the newest seen, which covers the
# reordering of concurrently running tasks without re-reading the whole table.
POLL_OVERLAP_SECONDS = 0.5
SERVICES = ("gateway", "deal-workflow")

Backend = Literal["postgresql", "sqlite"]


def _chunks(items: Sequence[Envelope], size: int) -> Iterator[Sequence[Envelope]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ping() -> Envelope:
    return Envelope(type=PING.type, payload={}, task_id=uuid4(), priority=Priority.MEDIUM)


def _phase_timeout(n: int) -> float:
    """Generous: a stuck section should fail with a message, not hang the whole run."""
    return 60.0 + n / 50


# --- raw aio-pika ceiling --------------------------------------------------------------------


def _raw_consumer_main(url: str, queue: str, phases: list[int], conn: Connection) -> None:
    """Entry point of the consumer process (spawned, so no state is inherited)."""
    asyncio.run(_raw_consume(url, queue, phases, conn))


async def _raw_consume(url: str, queue_name: str, phases: list[int], conn: Connection) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.declare_queue(queue_name, durable=True, passive=True)
        conn.send(("ready", 0.0, []))
        async with queue.iterator() as messages:
            iterator = aiter(messages)
            for count in phases:
                latencies: list[float] = []
                last_ack = 0.0
                for _ in range(count):
                    message = await anext(iterator)
                    await message.ack()
                    last_ack = wall()
                    sent = float(message.body.split(b" ", 1)[0])
                    latencies.append(last_ack - sent)
                conn.send(("done", last_ack, latencies))
    finally:
        await connection.close()


async def _recv(conn: Connection, timeout: float) -> tuple[str, float, list[float]]:
    def wait() -> tuple[str, float, list[float]]:
        if not conn.poll(timeout):
            raise TimeoutError(f"raw consumer silent for {timeout:.0f}s")
        message: tuple[str, float, list[float]] = conn.recv()
        return message

    return await asyncio.to_thread(wait)


async def _raw_publish(channel: AbstractChannel, queue: str, count: int, body_size: int) -> float:
    """Publish ``count`` messages in confirm windows; returns when the first window started."""
    exchange = channel.default_exchange
    first = 0.0
    for start in range(0, count, PUBLISH_WINDOW):
        size = min(PUBLISH_WINDOW, count - start)
        sent = wall()
        first = first or sent
        # The send time travels in the body, padded to the size of a project envelope.
        body = f"{sent:.6f} ".encode().ljust(body_size, b"x")
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        body,
                        delivery_mode=DeliveryMode.PERSISTENT,
                        content_type="application/json",
                    ),
                    routing_key=queue,
                    mandatory=True,
                )
                for _ in range(size)
            )
        )
    return first


async def run_raw(n: int, namespace: str) -> SectionResult:
    result = SectionResult(
        key="raw",
        label="raw aio-pika ceiling",
        unit="msgs/s",
        n=n,
        method=(
            "one durable classic queue, persistent messages, publisher confirms awaited per "
            f"window of {PUBLISH_WINDOW}, consumer in its own process, prefetch {PREFETCH}, "
            "one manual ack per message; first publish to last ack; latency publish to ack"
        ),
    )
    queue = f"{namespace}raw"
    # The raw messages weigh what a project command weighs on the wire.
    body_size = len(_ping().model_dump_json())
    warmup = warmup_count(n)
    connection = await aio_pika.connect(amqp_url())
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    consumer = ctx.Process(
        target=_raw_consumer_main, args=(amqp_url(), queue, [warmup, n], sender), daemon=True
    )
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.declare_queue(queue, durable=True)
        consumer.start()
        await _recv(receiver, 30)
        await _raw_publish(channel, queue, warmup, body_size)
        await _recv(receiver, _phase_timeout(warmup))
        first = await _raw_publish(channel, queue, n, body_size)
        _, last_ack, latencies = await _recv(receiver, _phase_timeout(n))
        result.completed = len(latencies)
        result.seconds = last_ack - first
        result.rate = n / result.seconds
        result.p50_ms, result.p99_ms = latency_summary(latencies)
        result.extra = {"warmup": warmup, "body_bytes": body_size}
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        consumer.join(5)
        if consumer.is_alive():
            consumer.kill()
        cleanup = await connection.channel()
        await cleanup.queue_delete(queue)
        await connection.close()
    return result


# --- PRS Tasks end to end --------------------------------------------------------------------


@dataclass
class _Databases:
    """Where the gateway (task registry) and the worker keep their tables during one section."""

    gateway_url: str
    worker_url: str
    drop: Callable[[], Awaitable[None]]
    data_dir: Path


def _pg_admin_dsn() -> str:
    return "postgresql://postgres@127.0.0.1:5432/postgres"


async def _postgres_databases(run_id: str) -> _Databases:
    names = [f"prs_bench_{run_id}_gateway", f"prs_bench_{run_id}_worker"]
    admin = await asyncpg.connect(_pg_admin_dsn())
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    data_dir = Path(tempfile.mkdtemp(prefix=f"prs-bench-{run_id}-pg-"))

    async def drop() -> None:
        admin = await asyncpg.connect(_pg_admin_dsn())
        try:
            for name in names:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        shutil.rmtree(data_dir, ignore_errors=True)

    base = "postgresql+asyncpg://postgres@127.0.0.1:5432"
    return _Databases(f"{base}/{names[0]}", f"{base}/{names[1]}", drop, data_dir)


async def _sqlite_databases(run_id: str) -> _Databases:
    data_dir = Path(tempfile.mkdtemp(prefix=f"prs-bench-{run_id}-sqlite-"))

    async def drop() -> None:
        shutil.rmtree(data_dir, ignore_errors=True)

    return _Databases(
        f"sqlite+aiosqlite:///{data_dir / 'gateway.sqlite3'}",
        f"sqlite+aiosqlite:///{data_dir / 'worker.sqlite3'}",
        drop,
        data_dir,
    )


async def _wait_ready(gateway: Child, port: int, timeout: float = 90.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            gateway.check_alive()
            with suppress(httpx.HTTPError):
                response = await client.get(f"http://127.0.0.1:{port}/readyz")
                if response.status_code == 200:
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"gateway not ready after {timeout:.0f}s:\n{gateway.log_tail()}")
            await asyncio.sleep(0.2)


async def _wait_consumer(
    connection: AbstractConnection, worker: Child, queue: str, timeout: float = 90.0
) -> None:
    """The worker has no HTTP endpoint; it is ready once it consumes its command queue."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        worker.check_alive()
        channel = await connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
            result = declared.declaration_result
            if result.consumer_count and result.consumer_count > 0:
                return
        except aio_pika.exceptions.ChannelClosed:
            pass  # not declared yet; a failed passive declare closes the channel
        finally:
            if not channel.is_closed:
                await channel.close()
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"worker not consuming after {timeout:.0f}s:\n{worker.log_tail()}")
        await asyncio.sleep(0.2)


@dataclass
class _Watch:
    """Task ids sent (with their send times) and when each was first seen SUCCEEDED."""

    sent: dict[str, float] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    finished: dict[str, datetime] = field(default_factory=dict)
    polls: int = 0


async def _watch_registry(
    engine: AsyncEngine, watch: _Watch, expected: int, timeout: float, processes: Sequence[Child]
) -> None:
    """Poll the gateway's ``tasks`` table until ``expected`` watched tasks read SUCCEEDED.

    A row seen by a query that started at ``t`` was committed before ``t``, so ``t`` is the
    visibility time (late by at most one poll interval plus the query itself).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    cursor: datetime | None = None
    last_progress = loop.time()
    columns = select(Task.task_id, Task.finished_at, Task.updated_at).where(
        Task.status == TaskStatus.SUCCEEDED.value
    )
    while len(watch.seen) < expected:
        # When nothing new has shown up for a while, re-read everything: a batch the gateway
        # retried may have committed rows far behind the cursor.
        full = cursor is None or loop.time() - last_progress > 1.0
        stmt = columns
        if not full and cursor is not None:
            stmt = columns.where(Task.updated_at >= cursor)
        started = wall()
        async with engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        watch.polls += 1
        new = 0
        for task_id, finished_at, updated_at in rows:
            if task_id in watch.sent and task_id not in watch.seen:
                watch.seen[task_id] = started
                watch.finished[task_id] = finished_at
                new += 1
            if updated_at is not None and (cursor is None or updated_at > cursor):
                cursor = updated_at
        if cursor is not None and rows:
            cursor = max(
                cursor - _overlap(),
                min(row[2] for row in rows if row[2] is not None),
            )
        if new:
            last_progress = loop.time()
        elif full:
            last_progress = loop.time()
            for child in processes:
                child.check_alive()
        if loop.time() > deadline:
            raise TimeoutError(
                f"only {len(watch.seen)} of {expected} tasks SUCCEEDED after {timeout:.0f}s"
            )
        await asyncio.sleep(POLL_INTERVAL)


def _overlap() -> datetime.__class__:  # pragma: no cover - replaced below
    raise NotImplementedError
