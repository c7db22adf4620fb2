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
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Literal
from uuid import uuid4

import aio_pika
import httpx
from aio_pika.abc import AbstractChannel, AbstractConnection, DeliveryMode
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.common import (
    PREFETCH,
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
from bench.cpu import CpuMeter
from gateway.broker_view import REGISTRY_CONSUMER
from gateway.broker_view import SERVICES as PLATFORM_SERVICES
from gateway.models import Task
from prs_shared.messaging.envelope import Envelope, Priority
from prs_shared.messaging.messages import PING, TaskStatus
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.topology import Topology, delete_all

# Publishes in flight at once; each window's confirms are awaited together before the next, so
# the client never holds more unconfirmed messages than this.
PUBLISH_WINDOW = 500
# The deal-workflow service consumes ``workflow``; ping is a ``system`` command by default.
TASK_QUEUE = "workflow"
# How often the registry is read while tasks complete; it bounds the latency resolution. Reading
# more often would take CPU from the services being measured.
POLL_INTERVAL = 0.02
# Registry rows commit in roughly the order of their ``updated_at`` (the worker's clock when it
# announced the outcome); each poll re-reads this much before the newest seen, which covers the
# reordering of concurrently running tasks without re-reading the whole table.
POLL_OVERLAP = timedelta(seconds=0.25)
# Every service's events queue may exist: the gateway declares them all (it watches their dead
# letters) besides its registry's own queue.
SERVICES = (*PLATFORM_SERVICES, REGISTRY_CONSUMER)

Backend = Literal["postgresql", "sqlite"]


def _chunks(items: Sequence[Envelope], size: int) -> Iterator[Sequence[Envelope]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ping() -> Envelope:
    return Envelope(type=PING.type, payload={}, task_id=uuid4(), priority=Priority.MEDIUM)


def command_size() -> int:
    """Bytes of a project command on the wire; the raw and peer lines pad their bodies to it."""
    return len(_ping().model_dump_json())


def phase_timeout(n: int) -> float:
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


async def recv_report(conn: Connection, timeout: float) -> tuple[str, float, list[float]]:
    def wait() -> tuple[str, float, list[float]]:
        if not conn.poll(timeout):
            raise TimeoutError(f"consumer silent for {timeout:.0f}s")
        message: tuple[str, float, list[float]] = conn.recv()
        return message

    return await asyncio.to_thread(wait)


PublishBody = Callable[[bytes], Awaitable[object]]


async def publish_windows(publish: PublishBody, count: int, body_size: int) -> float:
    """Publish ``count`` messages in confirm windows; returns when the first window started."""
    first = 0.0
    for start in range(0, count, PUBLISH_WINDOW):
        size = min(PUBLISH_WINDOW, count - start)
        sent = wall()
        first = first or sent
        # The send time travels in the body, padded to the size of a project envelope.
        body = f"{sent:.6f} ".encode().ljust(body_size, b"x")
        await asyncio.gather(*(publish(body) for _ in range(size)))
    return first


async def measure_consumer(
    result: SectionResult,
    publish: PublishBody,
    receiver: Connection,
    processes: Mapping[int, str],
    *,
    warmup: int,
    ready_timeout: float,
) -> None:
    """The raw line's measurement, for it and the lines measured like it: once the consumer
    reports ready, ``warmup`` messages untimed, then ``result.n`` from the first publish until
    the consumer reports its last; the consumer reports on ``receiver`` as ``_raw_consume``."""
    body_size = command_size()
    await recv_report(receiver, ready_timeout)
    await publish_windows(publish, warmup, body_size)
    await recv_report(receiver, phase_timeout(warmup))
    meter = CpuMeter(processes)
    meter.start()
    first = await publish_windows(publish, result.n, body_size)
    _, last, latencies = await recv_report(receiver, phase_timeout(result.n))
    spent = meter.stop()
    result.timed(first, last, latencies, spent, meter.elapsed, warmup=warmup, body_bytes=body_size)


def _raw_publisher(channel: AbstractChannel, queue: str) -> PublishBody:
    exchange = channel.default_exchange

    def publish(body: bytes) -> Awaitable[object]:
        message = aio_pika.Message(
            body, delivery_mode=DeliveryMode.PERSISTENT, content_type="application/json"
        )
        return exchange.publish(message, routing_key=queue, mandatory=True)

    return publish


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
        await measure_consumer(
            result,
            _raw_publisher(channel, queue),
            receiver,
            {os.getpid(): "bench publisher", consumer.pid or -1: "consumer"},
            warmup=warmup,
            ready_timeout=30,
        )
    except Exception as exc:
        result.failed(exc)
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


PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"


async def _pg_admin(statements: Sequence[str]) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    engine = create_async_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _postgres_databases(run_id: str) -> _Databases:
    # Fresh databases per run: no rows, bloat or statistics left by an earlier run.
    names = [f"prs_bench_{run_id}_gateway", f"prs_bench_{run_id}_worker"]
    await _pg_admin([f'CREATE DATABASE "{name}"' for name in names])
    data_dir = Path(tempfile.mkdtemp(prefix=f"prs-bench-{run_id}-pg-"))

    async def drop() -> None:
        await _pg_admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names])
        shutil.rmtree(data_dir, ignore_errors=True)

    return _Databases(f"{PG_SERVER}/{names[0]}", f"{PG_SERVER}/{names[1]}", drop, data_dir)


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


def worker_child(name: str, common: Mapping[str, str], database_url: str, log_dir: Path) -> Child:
    """The deal-workflow service as its own process, on ``database_url``."""
    return Child(
        name,
        [python(), "-m", "deal_workflow.main"],
        child_env(
            {
                **common,
                "PRS_DEAL_WORKFLOW_DATABASE_URL": database_url,
                "PRS_DEAL_WORKFLOW_METRICS_PORT": "0",
            }
        ),
        log_dir,
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
                raise TimeoutError(
                    f"gateway not ready after {timeout:.0f}s (log: {gateway.log_path})"
                )
            await asyncio.sleep(0.2)


async def _wait_consumers(
    connection: AbstractConnection, workers: Sequence[Child], queue: str, timeout: float = 90.0
) -> None:
    """Workers have no HTTP endpoint; they are ready once each consumes the command queue."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for worker in workers:
            worker.check_alive()
        channel = await connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
            result = declared.declaration_result
            if result.consumer_count and result.consumer_count >= len(workers):
                return
        except aio_pika.exceptions.ChannelClosed:
            pass  # not declared yet; a failed passive declare closes the channel
        finally:
            if not channel.is_closed:
                await channel.close()
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(
                f"workers not consuming after {timeout:.0f}s "
                f"(logs: {', '.join(str(w.log_path) for w in workers)})"
            )
        await asyncio.sleep(0.2)


@dataclass
class _Watch:
    """Task ids sent (with their send times) and when each was first seen SUCCEEDED."""

    sent: dict[str, float] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    finished: dict[str, datetime] = field(default_factory=dict)
    polls: int = 0


async def _watch_registry(
    engine: AsyncEngine, watch: _Watch, expected: int, timeout: float, children: Sequence[Child]
) -> None:
    """Poll the gateway's ``tasks`` table until ``expected`` watched tasks read SUCCEEDED.

    A row returned by a query that started at ``t`` was committed before ``t``, so ``t`` is taken
    as the moment the task became visible as SUCCEEDED (late by at most one poll interval plus
    the query itself).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    newest: datetime | None = None
    last_progress = loop.time()
    succeeded = select(Task.task_id, Task.finished_at, Task.updated_at).where(
        Task.status == TaskStatus.SUCCEEDED.value
    )
    # One connection for the whole watch: a pool checkout per poll would cost the machine more
    # CPU than the query (the poller shares two cores with what it measures).
    async with engine.connect() as conn:
        while len(watch.seen) < expected:
            # After a quiet second, re-read everything once: a batch the gateway had to retry
            # may commit rows far behind the cursor.
            quiet = loop.time() - last_progress > 1.0
            stmt = succeeded
            if newest is not None and not quiet:
                stmt = succeeded.where(Task.updated_at >= newest - POLL_OVERLAP)
            started = wall()
            rows = (await conn.execute(stmt)).all()
            watch.polls += 1
            progressed = False
            for task_id, finished_at, updated_at in rows:
                if newest is None or updated_at > newest:
                    newest = updated_at
                if task_id in watch.sent and task_id not in watch.seen:
                    watch.seen[task_id] = started
                    if finished_at is not None:
                        watch.finished[task_id] = finished_at
                    progressed = True
            if progressed or quiet:
                last_progress = loop.time()
            if quiet:
                for child in children:
                    child.check_alive()
            if loop.time() > deadline:
                raise TimeoutError(
                    f"only {len(watch.seen)} of {expected} tasks SUCCEEDED after {timeout:.0f}s"
                )
            await asyncio.sleep(POLL_INTERVAL)


async def _publish_tasks(publisher: Publisher, count: int, watch: _Watch) -> float:
    """Publish ``count`` pings through the project's publisher; returns the first send time."""
    first = 0.0
    envelopes = [_ping() for _ in range(count)]
    for window in _chunks(envelopes, PUBLISH_WINDOW):
        sent = wall()
        first = first or sent
        for envelope in window:
            watch.sent[str(envelope.task_id)] = sent
        await asyncio.gather(*(publisher.publish(e, queue=TASK_QUEUE) for e in window))
    return first


async def _run_tasks(
    publisher: Publisher, engine: AsyncEngine, count: int, children: Sequence[Child]
) -> tuple[_Watch, float]:
    watch = _Watch()
    watcher = asyncio.ensure_future(
        _watch_registry(engine, watch, count, phase_timeout(count), children)
    )
    try:
        first = await _publish_tasks(publisher, count, watch)
        await watcher
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    return watch, first


async def run_project(
    n: int, backend: Backend, run_id: str, log_dir: Path, *, replicas: int = 1
) -> SectionResult:
    """The project's line; with ``replicas`` > 1 (PostgreSQL only) as many deal-workflow
    processes compete for the queue on one shared database."""
    if replicas > 1 and backend != "postgresql":
        raise ValueError("replicas share a database: PostgreSQL only (SQLite takes one writer)")
    label = "PostgreSQL" if backend == "postgresql" else "SQLite"
    short = "pg" if backend == "postgresql" else "sqlite"
    suffix = "" if replicas == 1 else f"_x{replicas}"
    workers_text = (
        "deal-workflow (own process"
        if replicas == 1
        else (f"{replicas} deal-workflow replicas (own processes, one shared database")
    )
    result = SectionResult(
        key=f"project_{short}{suffix}",
        # Short enough for the table's first column.
        label=f"PRS Tasks ({label} registry)"
        if replicas == 1
        else f"PRS Tasks ({label}), {replicas} replicas",
        unit="tasks/s",
        n=n,
        method=(
            "diagnostic.ping tasks through the project's Publisher (confirms awaited per window of "
            f"{PUBLISH_WINDOW}) to {workers_text}, prefetch {PREFETCH}, {label}); "
            "the gateway (own process, same database engine) folds lifecycle events into its "
            f"registry, read every {POLL_INTERVAL * 1000:.0f} ms; first publish until all N are "
            "visible as SUCCEEDED; latency publish to first poll that sees the row"
        ),
    )
    namespace = f"bench{run_id}.{short}{suffix}."
    topology = Topology(namespace=namespace)
    databases = await (
        _postgres_databases(run_id) if backend == "postgresql" else _sqlite_databases(run_id)
    )
    port = free_port()
    common = {
        "PRS_NAMESPACE": namespace,
        "PRS_LOG_LEVEL": "WARNING",
        "PRS_DATA_DIR": str(databases.data_dir),
        "PRS_PREFETCH": str(PREFETCH),
    }
    children: list[Child] = []
    connection: AbstractConnection | None = None
    engine: AsyncEngine | None = None
    try:
        gateway = Child(
            f"gateway-{short}",
            [python(), "-m", "gateway.main"],
            child_env(
                {
                    **common,
                    "PRS_GATEWAY_PORT": str(port),
                    "PRS_GATEWAY_DATABASE_URL": databases.gateway_url,
                }
            ),
            log_dir,
        )
        children.append(gateway)
        # The gateway declares the topology and creates the registry; the worker comes second so
        # that its first lifecycle events already have a consumer.
        await _wait_ready(gateway, port)
        workers = [
            worker_child(
                f"deal-workflow-{short}{suffix}-{i}", common, databases.worker_url, log_dir
            )
            for i in range(replicas)
        ]
        children.extend(workers)
        connection = await aio_pika.connect(amqp_url())
        await _wait_consumers(connection, workers, topology.queue(TASK_QUEUE))
        # Autocommit: every poll reads the latest commits and no read transaction stays open
        # (under SQLite's WAL it would pin an old snapshot and hold back checkpoints).
        engine = create_async_engine(databases.gateway_url, isolation_level="AUTOCOMMIT")
        publisher = await Publisher.open(connection, topology)

        warmup = warmup_count(n)
        await _run_tasks(publisher, engine, warmup, children)
        meter = CpuMeter(
            {
                os.getpid(): "bench publisher+poller",
                gateway.proc.pid: "gateway",
                **{w.proc.pid: "worker" for w in workers},
            },
            database_marker=f"prs_bench_{run_id}",
        )
        meter.start()
        watch, first = await _run_tasks(publisher, engine, n, children)
        spent = meter.stop()

        last = max(watch.seen.values())
        visible = [watch.seen[t] - watch.sent[t] for t in watch.seen]
        finished = [watch.finished[t].timestamp() - watch.sent[t] for t in watch.finished]
        worker_p50, worker_p99 = latency_summary(finished)
        result.timed(
            first,
            last,
            visible,
            spent,
            meter.elapsed,
            warmup=warmup,
            registry_polls=watch.polls,
            # The worker stamps finished_at when it announces the outcome; the row shows up in
            # the registry after the gateway's next batch commits.
            publish_to_worker_finished_p50_ms=worker_p50,
            publish_to_worker_finished_p99_ms=worker_p99,
            database=backend,
            replicas=replicas,
        )
        await publisher.close()
    except Exception as exc:
        result.failed(exc, children)
    finally:
        for child in reversed(children):
            child.stop()
        if engine is not None:
            await engine.dispose()
        await _delete_topology(connection, topology)
        await databases.drop()
    return result


async def _delete_topology(connection: AbstractConnection | None, topology: Topology) -> None:
    if connection is None:
        connection = await aio_pika.connect(amqp_url())
    try:
        channel = await connection.channel()
        await delete_all(channel, topology, SERVICES)
    finally:
        await connection.close()
