"""A service given every node in AMQP_URL keeps consuming when the node it uses stops."""

from __future__ import annotations

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
from prs_shared.messaging.failover import FailoverConnection
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.topology import Topology, delete_all
from prs_shared.testing.fixtures import eventually
from prs_shared.testing.hosts import running_host
from prs_shared.testing.probe import EFFECT, MIGRATIONS, Effect, effects, probe_registry
from prs_shared.testing.worker import ProbeSettings

log = logging.getLogger(__name__)


def effect(key: str) -> Envelope:
    return Envelope(type=EFFECT.type, payload=Effect(key=key).model_dump(), task_id=uuid.uuid4())


def probe(amqp_url: str, namespace: str, tmp_path: Path, **more: Any) -> ProbeSettings:
    return ProbeSettings(
        amqp_url=amqp_url,
        namespace=namespace,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'probe.sqlite3'}",
        data_dir=tmp_path,
        heartbeat_interval=60,
        shutdown_grace=5,
        **more,
    )


async def count(database_url: str, key: str) -> int:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            n = await session.scalar(
                select(func.count()).select_from(effects).where(effects.c.key == key)
            )
            return int(n or 0)
    finally:
        await engine.dispose()


async def test_a_service_on_node_1_keeps_consuming_after_node_1_stops(
    all_nodes_up: list[str],
    cluster_ctl: Callable[..., str],
    cluster_namespace: str,
    tmp_path: Path,
) -> None:
    _, url2, url3 = all_nodes_up
    ns = cluster_namespace
    # Classic queues live on the node that declares them: a first start through node 2 puts
    # them there, so that what stops below is the service's node, not its queues' node.
    async with running_host(
        probe(url2, ns, tmp_path),
        handlers=probe_registry(),
        command_queues=("workflow",),
        migrations=MIGRATIONS,
    ):
        pass
    settings = probe(",".join(all_nodes_up), ns, tmp_path)
    db = settings.resolved_database_url()
    sender = await aio_pika.connect_robust(url3)
    publisher = await Publisher.open(sender, Topology(namespace=ns))
    try:
        async with running_host(
            settings,
            handlers=probe_registry(),
            command_queues=("workflow",),
            migrations=MIGRATIONS,
        ) as host:
            assert isinstance(host.connection, FailoverConnection)
            assert host.connection.current_url.port == 5681
            await publisher.publish(effect("before"))
            await eventually(lambda: _is(count(db, "before"), 1), timeout=30)

            cluster_ctl(1, "-q", "stop_app")
            stopped = time.monotonic()
            await publisher.publish(effect("after"))
            await eventually(lambda: _is(count(db, "after"), 1), timeout=60)
            log.warning(
                "failover: processed %.1fs after node 1 stopped", time.monotonic() - stopped
            )
            assert host.connection.current_url.port in (5682, 5683)
            # The restored consumer is on the queue, not only the connection (aio-pika #231).
            queue = await (await sender.channel()).declare_queue(f"{ns}workflow", passive=True)
            assert queue.declaration_result.consumer_count >= 1
    finally:
        cluster_ctl(1, "-q", "start_app")
        channel = await sender.channel()
        await delete_all(channel, Topology(namespace=ns), ["probe"])
        await publisher.close()
        await sender.close()


async def _is(value: Any, expected: int) -> bool:
    return bool(await value == expected)
