"""Worker recycling: past its task count or memory a worker restarts in place, losing nothing."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from prs_shared.db.engine import create_engine, session_factory
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.publisher import Publisher
from prs_shared.recycling import RecyclePolicy
from prs_shared.testing.fixtures import eventually
from prs_shared.testing.probe import EFFECT, Effect, effects


def test_a_policy_recycles_at_its_task_count() -> None:
    policy = RecyclePolicy(max_tasks=3)
    assert [policy.reason(n) for n in (1, 2)] == [None, None]
    assert policy.reason(3) == "3 tasks (PRS_MAX_TASKS_PER_WORKER=3)"
    assert RecyclePolicy(max_tasks=0).reason(10**6) is None


def test_a_policy_reads_memory_at_most_once_a_second_and_recycles_past_its_limit() -> None:
    now = [100.0]
    readings: list[int] = []

    def memory() -> int:
        readings.append(1)
        return 300 * 2**20

    policy = RecyclePolicy(max_memory_bytes=200 * 2**20, memory=memory, clock=lambda: now[0])
    assert policy.reason(1) == "300 MB resident (PRS_MAX_MEMORY_MB=200)"
    assert policy.reason(2) is None  # within the second: not read again
    now[0] += 1.0
    assert policy.reason(3) is not None
    assert len(readings) == 2
    small = RecyclePolicy(max_memory_bytes=400 * 2**20, memory=memory, clock=lambda: now[0])
    assert small.reason(1) is None


class Worker:
    """One probe service process, started as `make run` starts a service, stopped at the end."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "prs_shared.testing.worker"],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def starts(self) -> list[str]:
        return re.findall(r"probe started as (\S+)", self.log.read_text())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


@pytest.fixture
def start_worker(
    amqp_url: str, namespace: str, database_url: str, tmp_path: Path
) -> Iterator[type[Worker]]:
    started: list[Worker] = []
    base = {
        "AMQP_URL": amqp_url,
        "PRS_NAMESPACE": namespace,
        "PRS_DATABASE_URL": database_url,
        "PRS_LOG_JSON": "false",
        "PRS_HEARTBEAT_INTERVAL": "60",
        # One delivery at a time, so that each life of the process sees only its share.
        "PRS_PREFETCH": "1",
        "PRS_SHUTDOWN_GRACE": "5",
    }

    class Started(Worker):
        def __init__(self, **env: str) -> None:
            super().__init__({**base, **env}, tmp_path / f"worker-{len(started)}.log")
            started.append(self)

    yield Started
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(10)


async def handled(database_url: str) -> list[tuple[str, str]]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.execute(select(effects.c.key, effects.c.worker))
            return [(r.key, r.worker) for r in rows]
    finally:
        await engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("database_url", "limit", "messages"),
    [
        ("sqlite", {"PRS_MAX_TASKS_PER_WORKER": "3"}, 7),
        ("postgresql", {"PRS_MAX_TASKS_PER_WORKER": "3"}, 7),
        # 1 MB is below any Python process: it recycles after every task.
        ("postgresql", {"PRS_MAX_TASKS_PER_WORKER": "0", "PRS_MAX_MEMORY_MB": "1"}, 3),
    ],
    ids=["tasks-sqlite", "tasks-postgresql", "memory-postgresql"],
    indirect=["database_url"],
)
async def test_a_worker_past_its_limit_restarts_in_place_and_every_message_is_handled_once(
    start_worker: type[Worker],
    publisher: Publisher,
    database_url: str,
    limit: dict[str, str],
    messages: int,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        metrics_port = probe.getsockname()[1]
    worker = start_worker(**limit, PRS_METRICS_PORT=str(metrics_port))
    await eventually(lambda: _async(len(worker.starts()) == 1), message="the worker started")
    keys = [f"recycle-{n}" for n in range(messages)]
    for key in keys:
        await publisher.publish(
            Envelope(type=EFFECT.type, payload=Effect(key=key).model_dump(), task_id=uuid.uuid4())
        )

    async def all_handled() -> bool:
        return len(await handled(database_url)) >= messages

    await eventually(all_handled, timeout=60, message=f"{messages} messages handled")
    # It restarted, and is running again after its last restart: not merely gone.
    await eventually(
        lambda: _async(
            len(worker.starts()) >= 2
            and len(worker.starts()) == worker.log.read_text().count("recycling after") + 1
            and worker.proc.poll() is None
        ),
        message="the worker restarted",
    )
    rows = await handled(database_url)
    assert sorted(key for key, _ in rows) == sorted(keys)  # each exactly once
    same_process = f"{socket.gethostname()}:{worker.proc.pid}"
    assert set(worker.starts()) == {same_process}  # one PID throughout
    assert {w for _, w in rows} == {same_process}
    assert "recycling after" in worker.log.read_text()
    # The new image serves metrics on the same port, with the count carried over the exec.
    recycles = await eventually(
        lambda: _recycles_reported(metrics_port), message="prs_worker_recycles_total served"
    )
    assert recycles == len(worker.starts()) - 1
    assert worker.stop() == 0, worker.log.read_text()[-3000:]


async def _async(value: bool) -> bool:
    return value


async def _recycles_reported(port: int) -> float | None:
    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())

    try:
        text = await asyncio.to_thread(scrape)
    except OSError:
        return None
    found = re.search(r'^prs_worker_recycles_total\{service="probe"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else None


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_deliveries_handed_back_unstarted_are_handled_by_the_next_worker_exactly_once(
    probe_host, publisher: Publisher, tap, database_url: str
) -> None:
    started = await tap("task.started")
    keys = [f"handed-{n}" for n in range(8)]
    # Two batches of two run at once; the other four wait in the consumer when it hands back.
    settings = {"batch_size": 2, "batch_wait": 0.5, "prefetch": 8, "started_announce_delay": 0.05}
    async with probe_host(**settings) as first:
        for key in keys:
            await publisher.publish(
                Envelope(
                    type=EFFECT.type,
                    payload=Effect(key=key, sleep_ms=1000).model_dump(),
                    task_id=uuid.uuid4(),
                )
            )
        await eventually(lambda: _async(first.runtime.in_flight == 8), message="all received")
        # Hand back once a batch is under way (its tasks announced STARTED).
        await started.wait_for(lambda seen: len(seen) >= 2)
        first.runtime.hand_back()
    by_first = len(await handled(database_url))
    assert 2 <= by_first < 8  # what it had started it finished; the rest went back
    async with probe_host(**settings):

        async def all_handled() -> bool:
            return len(await handled(database_url)) >= 8

        await eventually(all_handled, message="the rest handled by the next worker")
    assert sorted(key for key, _ in await handled(database_url)) == sorted(keys)
