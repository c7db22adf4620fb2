"""Idle latency: one task at a time through the gateway, until its status reads SUCCEEDED.

The throughput sections say what a loaded system sustains; this one says what a single user
waits for on a quiet one — the path ``make run`` gives (SQLite, one process per service). Each
round posts the seed's commission calculation (a real process with nothing to calculate on an
empty database, so the platform's own path dominates) and polls its status until SUCCEEDED.
The task's timestamps split the wait: accept (the POST's answer), queued to started (outbox
relay, broker, the worker's intake), started to finished (the handler and its commit), and
finished to visible (the outcome's relay and the registry's fold).
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
from datetime import datetime
from pathlib import Path

import httpx

from bench.broker import _delete_topology, _sqlite_databases, _wait_ready, worker_child
from bench.common import Child, SectionResult, child_env, free_port, python, wall
from prs_shared.messaging.topology import Topology

ROUNDS = 200
WARMUP = 20
# Polled status reads this often; it bounds the resolution and costs the gateway a request each.
POLL_INTERVAL = 0.002
HOLD_SECONDS = 10
TRIGGER = "/api/automated-processes/trigger-commission-calculation/"


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


async def _round(client: httpx.AsyncClient, *, held: bool = True) -> dict[str, float]:
    """One task; its status asked with ``?wait=`` (held until it finishes, as the client
    library's ``wait`` asks) or polled every ``POLL_INTERVAL``."""
    sent = wall()
    accepted = await client.post(TRIGGER)
    answered = wall()
    accepted.raise_for_status()
    status_url = accepted.json()["status_url"]
    params = {"wait": HOLD_SECONDS} if held else None
    while True:
        status = await client.get(status_url, params=params)
        body = status.json()
        if body["status"] == "SUCCEEDED":
            seen = wall()
            break
        if body["status"] in ("FAILED", "DEAD_LETTERED", "CANCELLED"):
            raise RuntimeError(f"the task ended {body['status']}: {body.get('error')}")
        if wall() - sent > 30:
            raise TimeoutError(f"the task still reads {body['status']} after 30 s")
        await asyncio.sleep(POLL_INTERVAL)
    started, finished = _ts(body["started_at"]), _ts(body["finished_at"])
    return {
        "total": seen - sent,
        "accept": answered - sent,
        "to_started": started - answered,
        "handler": finished - started,
        "to_visible": seen - finished,
    }


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def run_idle_latency(run_id: str, log_dir: Path) -> SectionResult:
    result = SectionResult(
        key="idle_latency",
        label="PRS Tasks idle latency (SQLite, as make run)",
        unit="ms p50",
        n=ROUNDS,
        method=(
            "one trigger-commission-calculation at a time through the gateway (own process) to "
            "deal-workflow (own process); POST until the status reads SUCCEEDED, asked with "
            f"?wait={HOLD_SECONDS} (held until it finishes, as the client library's wait asks); "
            f"polled_*: the same rounds with the status polled every {POLL_INTERVAL * 1000:.0f} ms"
        ),
    )
    namespace = f"bench{run_id}.idle."
    databases = await _sqlite_databases(f"{run_id}_idle")
    key = secrets.token_urlsafe(24)
    port = free_port()
    common = {
        "PRS_NAMESPACE": namespace,
        "PRS_LOG_LEVEL": "WARNING",
        "PRS_DATA_DIR": str(databases.data_dir),
    }
    children: list[Child] = []
    try:
        gateway = Child(
            "gateway-idle",
            [python(), "-m", "gateway.main"],
            child_env(
                {
                    **common,
                    "PRS_GATEWAY_PORT": str(port),
                    "PRS_GATEWAY_DATABASE_URL": databases.gateway_url,
                    "PRS_ADMIN_API_KEY": key,
                    "PRS_RATE_LIMIT_BURST": str(10 * (ROUNDS + WARMUP)),
                }
            ),
            log_dir,
        )
        children.append(gateway)
        await _wait_ready(gateway, port)
        worker = worker_child("deal-workflow-idle", common, databases.worker_url, log_dir)
        children.append(worker)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
        ) as client:
            # The first rounds also wait for the worker to consume (it starts after the gateway).
            for _ in range(WARMUP):
                await _round(client)
            rounds = [await _round(client) for _ in range(ROUNDS)]
            polled = [await _round(client, held=False) for _ in range(ROUNDS)]
        totals = [r["total"] for r in rounds]
        polled_totals = [r["total"] for r in polled]
        result.completed = len(rounds)
        result.rate = _ms(totals, 0.5)
        result.p50_ms = _ms(totals, 0.5)
        result.p99_ms = _ms(totals, 0.99)
        result.extra = {
            "p90_ms": _ms(totals, 0.9),
            "polled_p50_ms": _ms(polled_totals, 0.5),
            "polled_p99_ms": _ms(polled_totals, 0.99),
            **{
                f"{part}_p50_ms": round(1000 * statistics.median(r[part] for r in rounds), 2)
                for part in ("accept", "to_started", "handler", "to_visible")
            },
        }
    except Exception as exc:
        result.failed(exc, children)
    finally:
        for child in reversed(children):
            child.stop()
        await _delete_topology(None, Topology(namespace=namespace))
        await databases.drop()
    return result
