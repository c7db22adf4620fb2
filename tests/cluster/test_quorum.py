"""PRS_QUEUE_TYPE=quorum on the cluster: tasks run, retry and dead-letter end to end, and keep
running when the node that leads their queue stops."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aio_pika
from sqlalchemy import func, select

from prs_shared.db.engine import create_engine, session_factory
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.headers import REASON_HEADER
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.topology import Topology, delete_all
from prs_shared.testing.fixtures import PgDatabases, eventually
from prs_shared.testing.hosts import running_host
from prs_shared.testing.overtaking import measure_overtaking
from prs_shared.testing.probe import EFFECT, MIGRATIONS, Effect, effects, probe_registry
from prs_shared.testing.worker import ProbeSettings

log = logging.getLogger(__name__)


def effect(key: str, **fields: Any) -> Envelope:
    return Envelope(
        type=EFFECT.type, payload=Effect(key=key, **fields).model_dump(), task_id=uuid.uuid4()
    )


async def rows(database_url: str, key: str) -> int:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            n = await session.scalar(
                select(func.count()).select_from(effects).where(effects.c.key == key)
            )
            return int(n or 0)
    finally:
        await engine.dispose()


async def test_a_task_runs_retries_and_dead_letters_on_quorum_queues_and_survives_its_leader(
    all_nodes_up: list[str],
    cluster_ctl: Callable[..., str],
    cluster_namespace: str,
    tmp_path: Path,
) -> None:
    ns = cluster_namespace
    topology = Topology(namespace=ns, queue_type="quorum")
    settings = ProbeSettings(
        amqp_url=",".join(all_nodes_up),  # node 1 first: it declares, so it leads the queues
        namespace=ns,
        queue_type="quorum",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'probe.sqlite3'}",
        data_dir=tmp_path,
        retry_base_delay=0.2,
        heartbeat_interval=60,
        shutdown_grace=5,
    )
    db = settings.resolved_database_url()
    sender = await aio_pika.connect_robust(all_nodes_up[2])
    publisher = await Publisher.open(sender, topology)

    async def is_one(key: str) -> bool:
        return await rows(db, key) == 1

    try:
        async with running_host(
            settings, handlers=probe_registry(), command_queues=("workflow",), migrations=MIGRATIONS
        ):
            listed = json.loads(
                cluster_ctl(2, "-q", "list_queues", "name", "type", "leader", "--formatter", "json")
            )
            mine = {q["name"]: q for q in listed if q["name"].startswith(ns)}
            assert mine[f"{ns}workflow"]["type"] == "quorum"
            assert mine[f"{ns}workflow.dlq"]["type"] == "quorum"
            assert mine[f"{ns}workflow"]["leader"] == "prs-c1@localhost"

            await publisher.publish(effect("plain"))
            await publisher.publish(effect("retried", fail_times=1))
            await publisher.publish(effect("refused", permanent=True))
            await eventually(lambda: is_one("plain"), timeout=30)
            await eventually(lambda: is_one("retried"), timeout=30)  # via a quorum delay queue

            channel = await sender.channel()
            dlq = await channel.declare_queue(
                f"{ns}workflow.dlq", passive=True, arguments=topology.plain_queue_arguments()
            )
            dead = await eventually(lambda: dlq.get(fail=False), timeout=30)
            assert dead.headers[REASON_HEADER]
            await dead.ack()
            assert await rows(db, "refused") == 0

            # The queue's leader stops: another node takes over, the service reconnects.
            cluster_ctl(1, "-q", "stop_app")
            stopped = time.monotonic()
            await publisher.publish(effect("after-leader"))
            await eventually(lambda: is_one("after-leader"), timeout=60)
            log.warning(
                "quorum failover: processed %.1fs after the leader stopped",
                time.monotonic() - stopped,
            )
    finally:
        cluster_ctl(1, "-q", "start_app")
        channel = await sender.channel()
        await delete_all(channel, topology, ["probe"])
        await publisher.close()
        await sender.close()


async def test_priority_overtaking_on_quorum_queues_is_measured_as_on_classic(
    all_nodes_up: list[str], cluster_namespace: str, amqp_url: str, pg_databases: PgDatabases
) -> None:
    """The same measurement as on classic queues (shared/tests/test_priority_overtaking.py): on
    RabbitMQ 3.10 quorum queues a high task waits for the backlog in arrival order, as ADR 0007
    says. A broker with quorum priorities (4.0) makes this fail: then the ADR changes.

    PostgreSQL, not SQLite: the effect rows' order is the order tasks committed, and SQLite's
    one writer, polling for its lock while the cluster loads the machine, can commit a task
    dozens of commits after it finished."""

    async def settings(queue_type: str, url: str, name: str) -> ProbeSettings:
        return ProbeSettings(
            amqp_url=url,
            namespace=f"{cluster_namespace}{name}.",
            queue_type=queue_type,  # type: ignore[arg-type]
            database_url=await pg_databases.create(),
            prefetch=8,
            heartbeat_interval=60,
            shutdown_grace=5,
        )

    classic = await measure_overtaking(
        await settings("classic", amqp_url, "classic"), lows=400, warm=20
    )
    quorum = await measure_overtaking(
        await settings("quorum", ",".join(all_nodes_up), "quorum"), lows=400, warm=20
    )
    log.warning("priority overtaking: classic %s; quorum %s", classic, quorum)
    assert classic.overtaken_by <= 2 * (classic.prefetch + classic.batch_size), classic
    assert quorum.backlog >= 200, quorum
    # Arrival order: the high task waits for (most of) the backlog, far beyond one prefetch.
    # The queue's message count is a moment's, so it is no exact bound.
    assert quorum.overtaken_by >= quorum.backlog // 2, quorum
    assert quorum.overtaken_by > 10 * (quorum.prefetch + quorum.batch_size), quorum
