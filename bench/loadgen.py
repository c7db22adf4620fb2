"""``python -m bench.loadgen URL KEY N CONCURRENCY``: POST one body N times over CONCURRENCY
keep-alive connections; print {"rate", "p50_ms", "p99_ms", "statuses"} as JSON.

The same generator drives the gateway and its no-op baseline, in its own process.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter

import httpx

from bench.common import latency_summary

BODY = {"deal_id": "D-1", "workflow_action": "verify_deal", "priority": "medium"}


async def run(url: str, key: str, n: int, concurrency: int) -> dict[str, object]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    remaining = iter(range(n))

    async with httpx.AsyncClient(limits=limits, timeout=30.0, headers=headers) as client:

        async def worker() -> None:
            for _ in remaining:
                t0 = time.perf_counter()
                response = await client.post(url, json=BODY)
                latencies.append(time.perf_counter() - t0)
                statuses[response.status_code] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    p50, p99 = latency_summary(latencies)
    return {
        "rate": n / elapsed,
        "seconds": elapsed,
        "p50_ms": p50,
        "p99_ms": p99,
        "statuses": dict(statuses),
    }


def main() -> None:
    url, key, n, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(asyncio.run(run(url, key, n, concurrency))))


if __name__ == "__main__":
    main()
