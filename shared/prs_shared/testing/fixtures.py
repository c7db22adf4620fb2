"""pytest fixtures for the real RabbitMQ and PostgreSQL (a plugin loaded by the root conftest).

The broker and database are the ones on this machine (``AMQP_URL``, ``PRS_TEST_DATABASE_URL``); on
a laptop without them but with Docker, testcontainers starts them. With neither, the run fails and
says what to start. Each test gets its own namespace of queues and exchanges and its own databases,
so a run never sees another's messages.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import pytest
from sqlalchemy.engine import make_url

from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.messages import (
    TASK_OUTCOMES,
    TaskLifecycle,
    TaskOutcomes,
    expand_outcomes,
)
from prs_shared.messaging.publisher import Publisher
from prs_shared.messaging.topology import Topology, declare_base, declare_work_queue, delete_all
from prs_shared.testing.tcp_proxy import TcpProxy

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
KNOWN_SERVICES = (
    "gateway",
    "gateway-registry",
    "deal-workflow",
    "file-processor",
    "notifier",
    "scheduler",
    "probe",
    "probe-tap",
)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "localhost", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    if _reachable(url, 5672):
        yield url
        return
    if _docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-management") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(5672)
            yield f"amqp://guest:guest@{host}:{port}/"
        return
    pytest.fail(
        f"RabbitMQ is not reachable at {url}. Start it (`rabbitmq-server -detached`), set "
        "AMQP_URL to a running broker, or make Docker available for testcontainers.",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    url = os.environ.get("PRS_TEST_DATABASE_URL", DEFAULT_PG_URL)
    if _reachable(make_url(url).render_as_string(hide_password=False), 5432):
        yield url
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="asyncpg") as container:
            yield container.get_connection_url()
        return
    pytest.fail(
        f"PostgreSQL is not reachable at {url}. Start it "
        "(`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`), set "
        "PRS_TEST_DATABASE_URL, or make Docker available for testcontainers.",
        pytrace=False,
    )


class PgDatabases:
    """Creates throw-away databases on the test PostgreSQL server and drops them afterwards."""

    def __init__(self, admin_url: str) -> None:
        self._admin = make_url(admin_url)
        self._created: list[str] = []

    def _dsn(self) -> str:
        return self._admin.set(drivername="postgresql").render_as_string(hide_password=False)

    async def create(self) -> str:
        name = f"prs_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(self._dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        self._created.append(name)
        return self._admin.set(database=name).render_as_string(hide_password=False)

    async def drop_all(self) -> None:
        if not self._created:
            return
        conn = await asyncpg.connect(self._dsn())
        try:
            for name in self._created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self._created.clear()


@pytest.fixture
async def pg_databases(pg_admin_url: str) -> AsyncIterator[PgDatabases]:
    dbs = PgDatabases(pg_admin_url)
    yield dbs
    await dbs.drop_all()


@pytest.fixture
async def pg_proxy(pg_admin_url: str) -> AsyncIterator[TcpProxy]:
    """A forwarder to the test PostgreSQL server that a test can cut, taking the database away
    from what connects through it (``proxied``) while the server stays up for the others."""
    server = make_url(pg_admin_url)
    forwarder = TcpProxy(server.host or "127.0.0.1", server.port or 5432)
    await forwarder.start()
    yield forwarder
    await forwarder.cut()


def proxied(url: str, proxy: TcpProxy) -> str:
    """``url`` (a test database's) reached through ``proxy``."""
    through = make_url(url).set(host="127.0.0.1", port=proxy.port)
    return through.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PgDatabases
) -> str:
    """A fresh, empty database: every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'service.sqlite3'}"
    return await pg_databases.create()


@pytest.fixture
async def namespace(amqp_url: str) -> AsyncIterator[str]:
    """A unique prefix for every queue and exchange of one test; removed afterwards."""
    ns = f"t{uuid.uuid4().hex[:10]}."
    yield ns
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        await delete_all(channel, Topology(namespace=ns), KNOWN_SERVICES)
    finally:
        await connection.close()


@pytest.fixture
def topology(namespace: str) -> Topology:
    return Topology(namespace=namespace)


@dataclass
class QueueInfo:
    messages: int
    consumers: int


class BrokerProbe:
    """Looks at queues from a separate connection, as an operator would."""

    def __init__(self, connection: aio_pika.abc.AbstractConnection) -> None:
        self._connection = connection

    async def queue(self, name: str) -> QueueInfo:
        channel = await self._connection.channel()
        try:
            declared = await channel.declare_queue(name, passive=True)
            result: Any = declared.declaration_result
            return QueueInfo(result.message_count, result.consumer_count)
        finally:
            await channel.close()

    async def get_all(self, name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Take every message currently in a queue (acked)."""
        channel = await self._connection.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
            messages: list[aio_pika.abc.AbstractIncomingMessage] = []
            while True:
                message = await queue.get(fail=False, no_ack=True)
                if message is None:
                    return messages
                messages.append(message)
        finally:
            await channel.close()


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[BrokerProbe]:
    connection = await aio_pika.connect(amqp_url)
    yield BrokerProbe(connection)
    await connection.close()


def close_connections(name_contains: str) -> int:
    """Force-close the broker connections whose client-given name contains the text.

    Uses ``rabbitmqctl`` (the broker on this machine); returns how many were closed.
    """
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl is needed to drop broker connections in this test", pytrace=False)
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    closed = 0
    for line in listing.splitlines():
        if name_contains in line:
            pid = line.split("\t", 1)[0]
            subprocess.run(
                ["rabbitmqctl", "-q", "close_connection", pid, "closed by test"],
                capture_output=True,
                check=True,
            )
            closed += 1
    return closed


async def eventually(
    check: Any, *, timeout: float = 20.0, interval: float = 0.05, message: str = ""
) -> Any:
    """Poll an async ``check`` until it returns something truthy; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s: {message} (last: {last!r})")


@pytest.fixture
async def publisher(amqp_url: str, topology: Topology) -> AsyncIterator[Publisher]:
    """The project's publisher on the test's namespace, with the base topology declared."""
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    await declare_base(channel, topology)
    await channel.close()
    yield await Publisher.open(connection, topology)
    await connection.close()


class EventTap:
    """A queue bound to some event types, read by the test as a subscriber would.

    A batch's ``task.outcomes`` is seen as the events of its tasks, each as the task's own
    ``task.succeeded`` (or ``task.cancelled``) would have been, so that a test reads one form.
    """

    def __init__(self, queue: aio_pika.abc.AbstractQueue) -> None:
        self._queue = queue
        self.seen: list[Envelope] = []
        self.wire: list[Envelope] = []
        """What arrived, as it arrived (``task.outcomes`` not unfolded)."""

    async def drain(self) -> list[Envelope]:
        while (message := await self._queue.get(fail=False, no_ack=True)) is not None:
            envelope = Envelope.model_validate_json(message.body)
            self.wire.append(envelope)
            if envelope.type != TASK_OUTCOMES.type:
                self.seen.append(envelope)
                continue
            payload = TaskOutcomes.model_validate(envelope.payload)
            for own, lifecycle in expand_outcomes(envelope, payload):
                self.seen.append(
                    own.model_copy(update={"payload": lifecycle.model_dump(mode="json")})
                )
        return self.seen

    def of_type(self, type_: str) -> list[Envelope]:
        return [e for e in self.seen if e.type == type_]

    async def wait_for(
        self, predicate: Callable[[list[Envelope]], bool], timeout: float = 30
    ) -> list[Envelope]:
        async def matched() -> bool:
            await self.drain()
            return predicate(self.seen)

        await eventually(
            matched, timeout=timeout, message=f"expected events; saw {[e.type for e in self.seen]}"
        )
        return self.seen


def final_lifecycle(events: list[Envelope], task_id: uuid.UUID | None) -> TaskLifecycle | None:
    """The task's first terminal lifecycle event among ``events`` (an ``EventTap``'s ``seen``)."""
    for event in events:
        if event.task_id == task_id and event.type.startswith("task."):
            lifecycle = TaskLifecycle.model_validate(event.payload)
            if lifecycle.status.terminal:
                return lifecycle
    return None


_CONCLUDED_KEYS = frozenset({"#", "task.#", "task.*", "task.succeeded", "task.cancelled"})
"""Tap keys whose events a batch's ``task.outcomes`` may carry."""


@pytest.fixture
async def tap(
    amqp_url: str, topology: Topology
) -> AsyncIterator[Callable[..., Awaitable[EventTap]]]:
    """``await tap("deal.*", ...)``: a new tap queue bound to those event routing keys."""
    connection = await aio_pika.connect(amqp_url)
    names: list[str] = []

    async def make(*keys: str) -> EventTap:
        if set(keys) & _CONCLUDED_KEYS:
            keys = (*keys, TASK_OUTCOMES.type)
        channel = await connection.channel()
        await declare_base(channel, topology)
        name = topology.events_queue(f"test-tap-{len(names)}")
        names.append(name)
        queue = await declare_work_queue(
            channel, topology, name, keys, exchange=topology.events_exchange
        )
        return EventTap(queue)

    yield make
    channel = await connection.channel()
    for name in names:
        await channel.queue_delete(name)
        await channel.queue_delete(topology.dlq(name))
    await connection.close()
