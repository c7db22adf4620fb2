"""Faults: a killed worker, a dropped broker connection, SIGTERM, a relay that dies mid-way."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from prs_shared.db.engine import create_engine, session_factory
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.headers import ERROR_HEADER, REASON_HEADER
from prs_shared.messaging.messages import TaskLifecycle, TaskStatus
from prs_shared.messaging.outbox import OutboxRelay, add_to_outbox
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.topology import Topology
from prs_shared.testing.fixtures import BrokerProbe, close_connections, eventually
from prs_shared.testing.probe import EFFECT, Effect, effects

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


def batched_on(database: str) -> pytest.MarkDecorator:
    """Per message on both databases, and batched on one: these faults hit the process or the
    connection, which batching changes the same way on either database (the batch transaction
    itself runs on both in test_batching)."""
    return pytest.mark.parametrize(
        ("database_url", "batch_size"),
        [("sqlite", 1), ("postgresql", 1), (database, 16)],
        ids=["sqlite", "postgresql", f"{database}-batch16"],
        indirect=True,
    )


def effect(key: str, **fields: object) -> Envelope:
    return Envelope(
        type=EFFECT.type,
        payload=Effect(key=key, **fields).model_dump(),  # type: ignore[arg-type]
        task_id=uuid.uuid4(),
    )


class Workers:
    """Probe service processes started for one test and always stopped at its end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self._env = env
        self._log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **env: str) -> subprocess.Popen[bytes]:
        log = open(self._log_dir / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "prs_shared.testing.worker"],
            env={**os.environ, **self._env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self._log_dir.glob("*.log"))
        )

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def workers(amqp_url: str, namespace: str, database_url: str, tmp_path: Path) -> Iterator[Workers]:
    env = {
        "AMQP_URL": amqp_url,
        "PRS_NAMESPACE": namespace,
        "PRS_DATABASE_URL": database_url,
        "PRS_LOG_JSON": "false",
        "PRS_HEARTBEAT_INTERVAL": "60",
        "PRS_RETRY_BASE_DELAY": "0.2",
    }
    pool = Workers(env, tmp_path)
    yield pool
    pool.stop_all()


def started_by(events: list[Envelope], task_id: uuid.UUID) -> list[str]:
    return [
        TaskLifecycle.model_validate(e.payload).worker
        for e in events
        if e.type == "task.started" and e.task_id == task_id
    ]


async def effect_rows(database_url: str, key: str) -> list[tuple[str, int]]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.execute(
                select(effects.c.worker, effects.c.attempt).where(effects.c.key == key)
            )
            return [(r.worker, r.attempt) for r in rows]
    finally:
        await engine.dispose()


@batched_on("sqlite")  # the killed batch holds SQLite's write lock
async def test_a_worker_killed_mid_handler_leaves_the_message_to_another_worker_effect_once(
    workers: Workers, publisher: Publisher, tap, database_url: str, batch_size: int
) -> None:
    events = await tap("task.started")
    doomed = workers.start(PRS_BATCH_SIZE=str(batch_size))
    message = effect("killed", sleep_ms=4000)
    await publisher.publish(message)
    seen = await events.wait_for(lambda s: started_by(s, message.task_id), timeout=30)
    victim = started_by(seen, message.task_id)[0]
    assert victim.endswith(f":{doomed.pid}"), workers.logs()
    survivor = workers.start(PRS_BATCH_SIZE=str(batch_size))
    await asyncio.sleep(1.0)  # let the survivor connect and consume
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    rows = await eventually(
        lambda: effect_rows(database_url, "killed"), timeout=40, message=workers.logs()
    )
    assert len(rows) == 1
    assert rows[0][0].endswith(f":{survivor.pid}")
    await asyncio.sleep(0.5)
    assert len(await effect_rows(database_url, "killed")) == 1


@batched_on("postgresql")
async def test_consumers_resume_after_the_broker_drops_the_connection_and_nothing_is_lost(
    probe_host,
    publisher: Publisher,
    broker: BrokerProbe,
    topology: Topology,
    database_url: str,
    batch_size: int,
) -> None:
    n = 120
    async with probe_host(prefetch=16, batch_size=batch_size) as host:
        for i in range(n // 2):
            await publisher.publish(effect(f"drop-{i}", sleep_ms=5))
        closed = await asyncio.to_thread(close_connections, host.worker)
        assert closed == 1
        for i in range(n // 2, n):
            await publisher.publish(effect(f"drop-{i}", sleep_ms=5))

        async def consumers_back() -> bool:
            return (await broker.queue(topology.queue("workflow"))).consumers == 1

        await eventually(consumers_back, timeout=30, message="consumer restored")

        async def all_done() -> bool:
            engine = create_engine(database_url)
            try:
                async with session_factory(engine)() as session:
                    keys = set((await session.execute(select(effects.c.key))).scalars())
            finally:
                await engine.dispose()
            return len(keys) == n

        await eventually(all_done, timeout=60, interval=0.3, message=f"{n} effects")
        info = await broker.queue(topology.queue("workflow"))
    assert info.messages == 0
    # Exactly once in effect, even for deliveries that were in flight when the connection died.
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        total = len((await session.execute(select(effects.c.id))).all())
    await engine.dispose()
    assert total == n


@batched_on("postgresql")
async def test_sigterm_lets_in_flight_work_finish_and_exits_cleanly(
    workers: Workers,
    publisher: Publisher,
    tap,
    database_url: str,
    broker: BrokerProbe,
    topology: Topology,
    batch_size: int,
) -> None:
    events = await tap("task.started")
    proc = workers.start(PRS_SHUTDOWN_GRACE="20", PRS_BATCH_SIZE=str(batch_size))
    # A batch runs its handlers one after another: shorter ones keep the test as short.
    sleep_ms = 1500 if batch_size == 1 else 400
    messages = [effect(f"term-{i}", sleep_ms=sleep_ms) for i in range(5)]
    for m in messages:
        await publisher.publish(m)
    await events.wait_for(lambda s: all(started_by(s, m.task_id) for m in messages), timeout=30)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0, workers.logs()
    for i in range(5):
        assert len(await effect_rows(database_url, f"term-{i}")) == 1, workers.logs()
    assert (await broker.queue(topology.queue("workflow"))).messages == 0


async def test_sigterm_past_the_grace_period_returns_unfinished_work_to_the_queue(
    workers: Workers, publisher: Publisher, tap, database_url: str
) -> None:
    events = await tap("task.started")
    proc = workers.start(PRS_SHUTDOWN_GRACE="0.5")
    slow = effect("slow-on-term", sleep_ms=5000)
    await publisher.publish(slow)
    await events.wait_for(lambda s: bool(started_by(s, slow.task_id)), timeout=30)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0, workers.logs()
    assert await effect_rows(database_url, "slow-on-term") == []
    workers.start()
    rows = await eventually(
        lambda: effect_rows(database_url, "slow-on-term"), timeout=40, message=workers.logs()
    )
    assert len(rows) == 1


async def test_a_relay_that_dies_between_publishing_and_removing_rows_causes_a_duplicate_that_is_absorbed(
    probe_host, publisher: Publisher, tap, database_url: str, count_effects, topology: Topology
) -> None:
    events = await tap("task.succeeded")
    async with probe_host() as host:
        host.relay.stop()  # this test plays the relay itself
        await asyncio.sleep(0.1)
        message = effect("relayed")
        async with host.sessions() as session, session.begin():
            await add_to_outbox(session, [message], topology)

        crashes = [True]

        def die_once(_ids: list[int]) -> None:
            if crashes:
                crashes.pop()
                raise RuntimeError("relay process died after the broker confirmed")

        relay = OutboxRelay(host.sessions, publisher, after_publish=die_once)
        with pytest.raises(RuntimeError, match="relay process died"):
            await relay.relay_once()
        assert await relay.relay_once() == 1  # the same row, published again
        assert await relay.relay_once() == 0  # and now gone
        await events.wait_for(lambda s: len([e for e in s if e.task_id == message.task_id]) == 2)
    assert await count_effects("relayed") == 1
    assert {TaskLifecycle.model_validate(e.payload).status for e in events.seen} == {
        TaskStatus.SUCCEEDED
    }


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_message_that_kills_its_worker_is_dead_lettered_past_the_crash_limit(
    workers: Workers,
    publisher: Publisher,
    tap,
    broker: BrokerProbe,
    topology: Topology,
    count_effects,
) -> None:
    events = await tap("task.#")
    poison = effect("poison", exit_process=True)
    await publisher.publish(poison)

    def dead_lettered(seen: list[Envelope]) -> bool:
        return any(e.type == "task.dead_lettered" and e.task_id == poison.task_id for e in seen)

    # Each worker takes the poison and dies with it; the next one counts the crash before it
    # runs the message again. With a limit of 2, the fourth worker dead-letters it and lives.
    crashes = 0
    survivor = None
    for _ in range(6):
        proc = workers.start(PRS_CRASH_LIMIT="2")
        for _ in range(300):
            if proc.poll() is not None or dead_lettered(events.seen):
                break
            await asyncio.sleep(0.1)
            await events.drain()
        if proc.poll() is None:
            survivor = proc
            break
        assert proc.returncode == 70, workers.logs()
        crashes += 1
    assert survivor is not None, workers.logs()
    assert crashes == 3, workers.logs()
    dead = await eventually(
        lambda: broker.get_all(topology.dlq(topology.queue("workflow"))), message="a dead letter"
    )
    assert [m.headers[REASON_HEADER] for m in dead] == ["crash_loop"]
    assert "worker holding it stopped" in str(dead[0].headers[ERROR_HEADER])
    # The queue moves on: an ordinary task after the poison completes on the surviving worker.
    ordinary = effect("after-the-poison")
    await publisher.publish(ordinary)
    await events.wait_for(
        lambda s: any(e.type == "task.succeeded" and e.task_id == ordinary.task_id for e in s),
        timeout=30,
    )
    assert await count_effects("poison") == 0
    assert await count_effects("after-the-poison") == 1
