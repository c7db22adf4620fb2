"""Gateway section: ``queue-deal-processing`` against a no-op endpoint with the same body.

Both servers run as their own process with the same uvicorn settings, loaded by the same Python
load generator (its own process, 32 keep-alive connections). The gateway uses PostgreSQL; its
outbox relay publishes every accepted task to RabbitMQ during the run, as in production.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
from pathlib import Path

from bench.broker import _postgres_databases, _wait_ready
from bench.common import Child, SectionResult, child_env, free_port, python
from prs_shared.messaging.topology import Topology, delete_all

CONCURRENCY = 32
PATH = "/api/background-tasks/queue-deal-processing/"


WRK_SECONDS = 10
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"deal_id": "D-1", "workflow_action": "verify_deal", "priority": "medium"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


def _seconds_or_ms(text: str) -> float:
    """wrk prints latencies as 812.00us, 3.21ms or 1.02s; milliseconds."""
    for suffix, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


async def _wrk(port: int, key: str, log_dir: Path, name: str) -> dict[str, object]:
    """wrk (C, two threads) when installed: far less CPU than a Python client on 2 cores."""
    script = log_dir / "post.lua"
    script.write_text(WRK_SCRIPT % key)
    proc = await asyncio.create_subprocess_exec(
        "wrk",
        "-t2",
        f"-c{CONCURRENCY}",
        f"-d{WRK_SECONDS}s",
        "--latency",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{PATH}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out_bytes, _ = await proc.communicate()
    out = out_bytes.decode()
    (log_dir / f"wrk-{name}.log").write_text(out)
    figures: dict[str, object] = {"seconds": float(WRK_SECONDS)}
    total = errors = 0
    for line in out.splitlines():
        parts = line.split()
        if line.strip().startswith("50%"):
            figures["p50_ms"] = _seconds_or_ms(parts[1])
        elif line.strip().startswith("99%"):
            figures["p99_ms"] = _seconds_or_ms(parts[1])
        elif line.startswith("Requests/sec:"):
            figures["rate"] = float(parts[1])
        elif "requests in" in line:
            total = int(parts[0])
        elif line.strip().startswith("Non-2xx"):
            errors = int(parts[-1])
    if "rate" not in figures:
        raise RuntimeError(f"wrk printed no rate (log: {log_dir / f'wrk-{name}.log'})")
    figures["statuses"] = {"202": total - errors, "other": errors}
    figures["n"] = total
    return figures


async def _load(port: int, key: str, n: int, log_dir: Path, name: str) -> dict[str, object]:
    if shutil.which("wrk"):
        return await _wrk(port, key, log_dir, name)
    proc = await asyncio.create_subprocess_exec(
        python(),
        "-m",
        "bench.loadgen",
        f"http://127.0.0.1:{port}{PATH}",
        key,
        str(n),
        str(CONCURRENCY),
        stdout=asyncio.subprocess.PIPE,
        stderr=(log_dir / f"loadgen-{name}.log").open("wb"),
        env=child_env({}),
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed (log: {log_dir / f'loadgen-{name}.log'})")
    result: dict[str, object] = json.loads(out)
    return result


def _section(
    key: str, label: str, n: int, figures: dict[str, object], method: str, generator: str
) -> SectionResult:
    n = int(figures.get("n", n))  # type: ignore[call-overload]
    statuses = figures["statuses"]
    ok = statuses.get("202", 0) if isinstance(statuses, dict) else 0
    return SectionResult(
        key=key,
        label=label,
        unit="req/s",
        n=n,
        completed=int(ok),
        seconds=float(figures["seconds"]),  # type: ignore[arg-type]
        rate=float(figures["rate"]),  # type: ignore[arg-type]
        p50_ms=float(figures["p50_ms"]),  # type: ignore[arg-type]
        p99_ms=float(figures["p99_ms"]),  # type: ignore[arg-type]
        method=method,
        extra={"statuses": statuses, "load_generator": generator},
        error=None if ok == n else f"only {ok} of {n} answered 202: {statuses}",
    )


async def run_gateway_http(n: int, run_id: str, log_dir: Path) -> list[SectionResult]:
    key = secrets.token_urlsafe(24)
    namespace = f"bench{run_id}.http."
    databases = await _postgres_databases(f"{run_id}_http")
    gateway_port, noop_port = free_port(), free_port()
    children: list[Child] = []
    try:
        gateway = Child(
            "gateway-http",
            [python(), "-m", "gateway.main"],
            child_env(
                {
                    "PRS_NAMESPACE": namespace,
                    "PRS_LOG_LEVEL": "WARNING",
                    "PRS_DATA_DIR": str(databases.data_dir),
                    "PRS_GATEWAY_PORT": str(gateway_port),
                    "PRS_GATEWAY_DATABASE_URL": databases.gateway_url,
                    "PRS_ADMIN_API_KEY": key,
                    "PRS_RATE_LIMIT_BURST": str(10 * n),
                    "PRS_RATE_LIMIT_PER_MINUTE": str(60 * 10 * n),
                }
            ),
            log_dir,
        )
        noop = Child(
            "noop-http",
            [python(), "-m", "bench.noop_app"],
            child_env({"PRS_GATEWAY_PORT": str(noop_port)}),
            log_dir,
        )
        children += [gateway, noop]
        await _wait_ready(gateway, gateway_port)
        await _wait_ready(noop, noop_port)
        warm = max(50, n // 10)
        await _load(noop_port, key, warm, log_dir, "noop-warmup")
        await _load(gateway_port, key, warm, log_dir, "gateway-warmup")
        noop_figures = await _load(noop_port, key, n, log_dir, "noop")
        gateway_figures = await _load(gateway_port, key, n, log_dir, "gateway")
        generator = "wrk" if shutil.which("wrk") else "python"
        shown = (
            f"wrk, {WRK_SECONDS} s" if generator == "wrk" else "Python load generator (install wrk)"
        )
        common = f"{CONCURRENCY} connections, {shown}, own process; uvicorn, one worker each"
        return [
            _section(
                "gateway_noop",
                "no-op FastAPI endpoint, same body",
                n,
                noop_figures,
                f"validation only; {common}",
                generator,
            ),
            _section(
                "gateway_queue",
                "gateway queue-deal-processing (PostgreSQL)",
                n,
                gateway_figures,
                "bearer auth, validation, task row + outbox committed, relayed with confirms; "
                + common,
                generator,
            ),
        ]
    finally:
        for child in reversed(children):
            child.stop()
        await databases.drop()
        await _delete_namespace(namespace)


async def _delete_namespace(namespace: str) -> None:
    import aio_pika

    from bench.common import amqp_url

    connection = await aio_pika.connect(amqp_url())
    try:
        channel = await connection.channel()
        await delete_all(
            channel,
            Topology(namespace=namespace),
            (
                "gateway",
                "gateway-registry",
                "deal-workflow",
                "file-processor",
                "notifier",
                "scheduler",
            ),
        )
    finally:
        await connection.close()
