"""scripts/rabbitmq-cluster: three nodes in one cluster, beside the broker on 5672."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import aio_pika

HARNESS = Path(__file__).resolve().parents[2] / "scripts" / "rabbitmq-cluster"


def test_the_three_nodes_run_as_one_cluster(
    all_nodes_up: list[str], cluster_ctl: Callable[..., str]
) -> None:
    status = json.loads(cluster_ctl(1, "-q", "cluster_status", "--formatter", "json"))
    assert sorted(status["running_nodes"]) == [
        "prs-c1@localhost",
        "prs-c2@localhost",
        "prs-c3@localhost",
    ]
    assert [u.rsplit(":", 1)[1] for u in all_nodes_up] == ["5681/", "5682/", "5683/"]


async def test_a_queue_declared_on_one_node_is_seen_from_another(all_nodes_up: list[str]) -> None:
    name = f"harness-{uuid.uuid4().hex[:8]}"
    first = await aio_pika.connect(all_nodes_up[0])
    third = await aio_pika.connect(all_nodes_up[2])
    try:
        channel = await first.channel()
        await channel.declare_queue(name, arguments={"x-queue-type": "quorum"}, durable=True)
        await channel.default_exchange.publish(aio_pika.Message(b"hello"), routing_key=name)
        other = await third.channel()
        queue = await other.declare_queue(name, passive=True)
        message = await queue.get(timeout=10)
        assert message.body == b"hello"
        await message.ack()
        await other.queue_delete(name)
    finally:
        await first.close()
        await third.close()


def test_the_cluster_does_not_touch_the_broker_on_5672(
    cluster_urls: list[str], cluster_ctl: Callable[..., str]
) -> None:
    status = json.loads(cluster_ctl(1, "-q", "cluster_status", "--formatter", "json"))
    assert "rabbit@localhost" not in status["running_nodes"] + status["disk_nodes"]
    assert all(":5672/" not in url for url in cluster_urls)


def test_without_rabbitmq_server_the_harness_fails_saying_what_to_install(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "PRS_RABBITMQ_BIN": str(tmp_path / "none"),
        "PRS_CLUSTER_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [str(HARNESS), "start"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "rabbitmq-server is not installed" in done.stderr
    assert "apt-get install -y rabbitmq-server" in done.stderr
