"""The five real services, started once per test module, and clients of their gateway.

The stack is the end-to-end tests' own (tests/e2e/conftest.py), loaded by path because the test
directories are not packages.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import aio_pika
import pytest

from prs_client import Client
from prs_shared.messaging.topology import Topology, delete_all
from prs_shared.testing.fixtures import KNOWN_SERVICES

REPO = Path(__file__).resolve().parents[3]
# A tiny queuing budget, so that a burst of calls meets 429 and the client's retries.
RATE_LIMIT_BURST = 4
RATE_LIMIT_PER_MINUTE = 240


def _load_e2e() -> ModuleType:
    name = "prs_e2e_stack"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "e2e" / "conftest.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


e2e = _load_e2e()
Stack = e2e.Stack


async def _delete_namespace(amqp_url: str, namespace: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        await delete_all(await connection.channel(), Topology(namespace=namespace), KNOWN_SERVICES)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def stack(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The services, ready and every consumer running, shared by the tests of one module."""
    namespace = f"t{uuid.uuid4().hex[:10]}."
    services = e2e.make_stack(
        amqp_url,
        namespace,
        tmp_path_factory.mktemp("stack"),
        PRS_RATE_LIMIT_BURST=str(RATE_LIMIT_BURST),
        PRS_RATE_LIMIT_PER_MINUTE=str(RATE_LIMIT_PER_MINUTE),
    )
    try:
        services.start()
        services.wait_ready()
        # Every service answering means every events queue is bound: nothing published from
        # here on falls through to the unrouted queue.
        with Client(services.gateway_url, services.api_key) as client:
            for task in client.queue_diagnostic().tasks.values():
                client.wait(task.task_id, timeout=30)
        yield services
    finally:
        services.kill()
        asyncio.run(_delete_namespace(amqp_url, namespace))


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    with Client(stack.gateway_url, stack.api_key) as client:
        yield client
