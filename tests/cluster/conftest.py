"""The three-node cluster of ``scripts/rabbitmq-cluster`` for the cluster tests.

``make test-cluster`` starts it before and stops it after the run; the fixture starts it too
(start is idempotent) so that one test can be run on its own.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "scripts" / "rabbitmq-cluster"


def harness(*args: str) -> str:
    """Run the harness; its output, or a failed test saying what it printed."""
    done = subprocess.run([str(HARNESS), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(
            f"scripts/rabbitmq-cluster {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def ctl(node: int, *args: str) -> str:
    """rabbitmqctl against one node of the cluster (1, 2 or 3)."""
    return harness("ctl", str(node), *args)


Ctl = Callable[..., str]


@pytest.fixture(scope="session")
def cluster_ctl() -> Ctl:
    """``cluster_ctl(node, *rabbitmqctl_args)``."""
    return ctl


@pytest.fixture(scope="session")
def cluster_urls() -> list[str]:
    """The AMQP URLs of the three running nodes, node 1 first."""
    harness("start")  # fails saying what to install when rabbitmq-server is missing
    return harness("nodes").strip().split(",")


@pytest.fixture
def all_nodes_up(cluster_urls: list[str]) -> list[str]:
    """Every node's app running again (a previous test may have stopped one)."""
    for node in (1, 2, 3):
        ctl(node, "-q", "start_app")
    for node in (1, 2, 3):
        ctl(node, "-q", "await_startup")
    return cluster_urls


@pytest.fixture
def cluster_namespace() -> str:
    """A unique prefix for one test's queues and exchanges on the cluster."""
    return f"c{uuid.uuid4().hex[:10]}."
