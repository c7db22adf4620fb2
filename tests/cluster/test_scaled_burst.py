"""The scaled shape under faults: three replicas of each worker service and two gateways on the
three-node cluster with quorum queues, each service on its own PostgreSQL database.

A burst of tasks of mixed types goes in through both gateways; while it runs one broker node
stops and one replica of each worker service is killed with SIGKILL. Every accepted task must end
in a terminal state, every email go out once, the invoice numbers stay gap-free, and every queue
have its consumers again.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from sqlalchemy import text

from gateway.broker_view import queue_names
from prs_shared.db.engine import create_engine
from prs_shared.messaging.topology import Topology, delete_all
from prs_shared.testing.fixtures import PgDatabases
from tests.e2e.conftest import BIN, REPO, SERVICES, ServiceProcess, free_port, make_stack

REPLICAS = {"deal-workflow": 3, "file-processor": 3, "notifier": 3, "scheduler": 3}
GATEWAYS = 2
BURST = 3000
TERMINAL = ("SUCCEEDED", "FAILED", "DEAD_LETTERED", "CANCELLED")
USERS = [f"demo-{org}-{who}" for org in ("acme", "globex") for who in ("admin", "finance")]
DEALS = [f"demo-{org}-deal-{n}" for org in ("acme", "globex") for n in (1, 3)]


class ScaledStack:
    """Two gateways and N replicas of every worker service, each started as `make run` does."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.ports = [free_port() for _ in range(GATEWAYS)]
        self.processes: list[ServiceProcess] = []

    def start(self, name: str, index: int, **env: str) -> ServiceProcess:
        log = self.log_dir / f"{name}-{index}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [str(BIN / f"prs-{name}")],
                cwd=REPO,
                env={**self.env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = ServiceProcess(f"{name}-{index}", process, log)
        self.processes.append(started)
        return started

    def start_all(self) -> None:
        for i, port in enumerate(self.ports):
            self.start("gateway", i, PRS_GATEWAY_PORT=str(port))
        for name, count in REPLICAS.items():
            for i in range(count):
                self.start(name, i)

    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name} ({'running' if p.process.poll() is None else 'exited'}):\n{p.tail(15)}"
            for p in self.processes
        )

    def running(self, name: str) -> list[ServiceProcess]:
        return [
            p for p in self.processes if p.name.startswith(f"{name}-") and p.process.poll() is None
        ]

    def stop(self) -> None:
        for p in self.processes:
            if p.process.poll() is None:
                p.process.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                p.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.process.kill()
                p.process.wait(timeout=10)


async def wait_until(
    check: Callable[[], Any], timeout: float, what: str, stack: ScaledStack
) -> Any:
    """Poll ``check`` (plain or async) until it gives something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.5)
    pytest.fail(f"{what} within {timeout:.0f}s (last: {last})\n{stack.logs()}")


def requests() -> Iterator[tuple[str, dict[str, Any]]]:
    """The burst's mix, in a fixed order: notifications, deal actions, invoices, diagnostics."""
    notifications = (
        (
            "/api/background-tasks/send-notification/",
            {
                "notification_type": "password_expiry_warning",
                "recipient_type": "user",
                "user_id": user,
                "additional_data": {"days_until_expiry": 7},
            },
        )
        for user in itertools.cycle(USERS)
    )
    actions = (
        (
            "/api/background-tasks/queue-deal-processing/",
            {"deal_id": deal, "workflow_action": action},
        )
        for deal, action in zip(
            itertools.cycle(DEALS),
            itertools.cycle(("calculate_commission", "update_payment_status", "generate_invoice")),
            strict=False,
        )
    )
    diagnostics = (
        ("/api/background-tasks/queue-diagnostic/", {"services": [service]})
        for service in itertools.cycle(("deal-workflow", "file-processor", "notifier"))
    )
    for source in itertools.cycle((notifications, actions, actions, diagnostics)):
        yield next(source)


async def send_burst(
    stack: ScaledStack, key: str, on_progress: Callable[[int], None]
) -> list[tuple[str, str]]:
    """POST the burst through both gateways, 16 at a time; (task id, path) of each 202."""
    urls = stack.urls()
    accepted: list[tuple[str, str]] = []
    queue: asyncio.Queue[tuple[int, str, dict[str, Any]]] = asyncio.Queue()
    for i, (path, body) in zip(range(BURST), requests(), strict=False):
        queue.put_nowait((i, path, body))
    headers = {"Authorization": f"Bearer {key}"}

    async def sender(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i, path, body = queue.get_nowait()
            for _attempt in range(20):
                # A gateway whose broker node just stopped may answer 503 for a moment.
                try:
                    response = await client.post(urls[i % len(urls)] + path, json=body)
                except httpx.TransportError:
                    await asyncio.sleep(0.5)
                    continue
                if response.status_code == 202:
                    answer = response.json()
                    # A diagnostic answers with one task per service it pings.
                    for task in answer["tasks"].values() if "tasks" in answer else [answer]:
                        accepted.append((task["task_id"], path))
                    on_progress(len(accepted))
                    break
                assert response.status_code in (429, 503), f"{response.text}\n{stack.logs()}"
                await asyncio.sleep(0.5)

    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        await asyncio.gather(*(sender(client) for _ in range(16)))
    return accepted


async def query(url: str, sql: str) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


async def consumers(amqp_url: str, queues: list[str]) -> dict[str, int]:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        found = {}
        for name in queues:
            declared = await channel.declare_queue(name, passive=True)
            found[name] = int(declared.declaration_result.consumer_count or 0)
        return found
    finally:
        await connection.close()


@pytest.mark.timeout(900)
async def test_a_burst_through_two_gateways_survives_a_node_stop_and_a_killed_replica_each(
    all_nodes_up: list[str],
    cluster_ctl: Callable[..., str],
    cluster_namespace: str,
    pg_databases: PgDatabases,
    tmp_path: Path,
) -> None:
    databases = {
        name: await pg_databases.create()
        for name in ("gateway", "deal-workflow", "file-processor", "notifier", "scheduler")
    }
    base = make_stack(
        ",".join(all_nodes_up),
        cluster_namespace,
        tmp_path,
        PRS_QUEUE_TYPE="quorum",
        PRS_RATE_LIMIT_PER_MINUTE="1000000",
        PRS_RATE_LIMIT_BURST="100000",
        PRS_SHUTDOWN_GRACE="5",
        # Fourteen processes on one PostgreSQL (max_connections 100 here): at the default pools
        # their peaks add up past it, as docs/deploy.md counts.
        PRS_DB_POOL_SIZE="2",
        PRS_DB_POOL_OVERFLOW="1",
        **{
            f"PRS_{name.upper().replace('-', '_')}_DATABASE_URL": url
            for name, url in databases.items()
        },
    )
    stack = ScaledStack(base.env, tmp_path)
    topology = Topology(namespace=cluster_namespace)
    queues = queue_names(topology)

    async def all_consumed() -> dict[str, int] | None:
        found = await consumers(all_nodes_up[1], queues)
        return found if all(n >= 1 for n in found.values()) else None

    try:
        stack.start_all()

        def ready() -> bool:
            for url in stack.urls():
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code != 200:
                        return False
                except httpx.TransportError:
                    return False
            return True

        await wait_until(ready, 120, "both gateways ready", stack)
        await wait_until(all_consumed, 120, "consumers on every queue", stack)
        seeded = subprocess.run(
            [str(BIN / "prs"), "seed-demo"],
            env=base.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        # Deals 1 are valid: verified first, so that their invoices can be issued in the burst.
        with httpx.Client(headers={"Authorization": f"Bearer {base.api_key}"}, timeout=30) as http:
            for deal in ("demo-acme-deal-1", "demo-globex-deal-1"):
                answer = http.post(
                    f"{stack.urls()[0]}/api/background-tasks/queue-deal-processing/",
                    json={"deal_id": deal, "workflow_action": "verify_deal"},
                )
                assert answer.status_code == 202, answer.text
                task_id = answer.json()["task_id"]

                def verified(task_id: str = task_id) -> bool:
                    status = http.get(
                        f"{stack.urls()[0]}/api/background-tasks/{task_id}/status/"
                    ).json()
                    return status["status"] in TERMINAL

                await wait_until(verified, 120, f"{deal} verified", stack)

        faults: list[str] = []

        def on_progress(done: int) -> None:
            if done == BURST // 4 and not faults:
                faults.append("node 1 stopped")
                subprocess.Popen(
                    [str(REPO / "scripts" / "rabbitmq-cluster"), "ctl", "1", "-q", "stop_app"]
                )
            if done == BURST // 2 and len(faults) == 1:
                for name in REPLICAS:
                    victim = stack.running(name)[0]
                    victim.process.kill()
                    faults.append(f"{victim.name} killed")

        accepted = await send_burst(stack, base.api_key, on_progress)
        assert len(accepted) >= BURST
        assert len(faults) == 1 + len(REPLICAS), faults

        # The killed replicas come back, as their supervisor would start them again.
        for name in REPLICAS:
            stack.start(name, 9)

        ids = [task_id for task_id, _ in accepted]

        async def statuses() -> Counter[str]:
            rows = await query(
                databases["gateway"],
                "SELECT status, count(*) FROM tasks WHERE task_id IN ("
                + ",".join(f"'{i}'" for i in ids)
                + ") GROUP BY status",
            )
            return Counter({status: n for status, n in rows})

        async def all_terminal() -> Counter[str] | None:
            found = await statuses()
            return found if sum(found[s] for s in TERMINAL) == len(ids) else None

        final = await wait_until(all_terminal, 420, "every accepted task terminal", stack)
        # Node 1 back: the killed replicas' successors and the survivors consume every queue.
        cluster_ctl(1, "-q", "start_app")
        back = await wait_until(all_consumed, 120, "consumers on every queue again", stack)
        assert set(back) == set(queues)
    finally:
        stack.stop()
        cluster_ctl(1, "-q", "start_app")
        connection = await aio_pika.connect(all_nodes_up[1])
        try:
            await delete_all(await connection.channel(), topology, SERVICES)
        finally:
            await connection.close()

    # Every email out exactly once: one sent mail per notification task's command.
    mails = await query(
        databases["notifier"],
        "SELECT source_message_id, count(*) FROM sent_mail"
        " WHERE notification_type = 'password_expiry_warning' AND status = 'sent'"
        " GROUP BY source_message_id",
    )
    notifications = sum(1 for _, path in accepted if path.endswith("send-notification/"))
    assert len(mails) == notifications, (len(mails), notifications, final)
    assert {n for _, n in mails} == {1}
    # One invoice per verified deal, numbered 1.. per organization and year without a gap.
    invoices = await query(
        databases["deal-workflow"],
        "SELECT organization_id, year, sequence FROM invoices ORDER BY 1, 2, 3",
    )
    assert invoices, "no invoice issued"
    by_counter: dict[tuple[str, int], list[int]] = {}
    for org, year, sequence in invoices:
        by_counter.setdefault((org, year), []).append(sequence)
    for sequences in by_counter.values():
        assert sequences == list(range(1, len(sequences) + 1))
    # What failed is a workflow action its deal's state refuses (an invoice for an unverified
    # deal, say), never a notification or a diagnostic that the faults lost.
    failed = await query(
        databases["gateway"],
        "SELECT task_type, count(*) FROM tasks WHERE status <> 'SUCCEEDED' GROUP BY task_type",
    )
    assert {task_type for task_type, _ in failed} <= {"deal.process_workflow"}, failed
