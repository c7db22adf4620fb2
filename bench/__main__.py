"""``python -m bench``: PRS Tasks, the raw broker ceiling and the peer task systems side by side.

The peers are Celery with the seed's settings, Dramatiq and a FastStream subscriber.

Every section runs against the same RabbitMQ with the same durability and its own names (a fresh
namespace, databases and queues per run, removed afterwards). A further section is one more entry
in :data:`SECTIONS`: an async function from :class:`Run` to a :class:`SectionResult`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.broker import run_project, run_raw
from bench.celery_baseline import run_celery
from bench.common import REPO_ROOT, SectionResult, amqp_url, redacted, warmup_count
from bench.dramatiq_baseline import run_dramatiq
from bench.email import run_email_bench
from bench.faststream_baseline import run_faststream
from bench.files import run_file_bench
from bench.gateway_http import run_gateway_http
from bench.idle_latency import run_idle_latency
from bench.priority import run_priority
from bench.report import render, write_json

DEFAULT_N = 5000
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
RESULTS_DIR = REPO_ROOT / "bench" / "results"


@dataclass(frozen=True)
class Run:
    """What every section of one run shares."""

    n: int
    run_id: str
    log_dir: Path
    redis_url: str


async def _raw(run: Run) -> SectionResult:
    return await run_raw(run.n, f"bench{run.run_id}.")


async def _project_pg(run: Run) -> SectionResult:
    return await run_project(run.n, "postgresql", run.run_id, run.log_dir)


async def _replicas(run: Run) -> list[SectionResult]:
    # On 2 cores more replicas cannot add much throughput; what must hold is CPU per task.
    return [
        await run_project(run.n, "postgresql", run.run_id, run.log_dir, replicas=replicas)
        for replicas in (2, 3)
    ]


async def _project_sqlite(run: Run) -> SectionResult:
    return await run_project(run.n, "sqlite", run.run_id, run.log_dir)


async def _celery(run: Run) -> SectionResult:
    # Celery's client is synchronous; a thread keeps it off the event loop.
    return await asyncio.to_thread(run_celery, run.n, run.run_id, run.log_dir, run.redis_url)


async def _dramatiq(run: Run) -> SectionResult:
    # Dramatiq's RabbitMQ client (pika) is synchronous too.
    return await asyncio.to_thread(run_dramatiq, run.n, run.run_id, run.log_dir, run.redis_url)


async def _faststream(run: Run) -> SectionResult:
    return await run_faststream(run.n, run.run_id, run.log_dir)


async def _gateway_http(run: Run) -> list[SectionResult]:
    # Requests are cheaper than tasks end to end; a fixed count keeps this section short.
    return await run_gateway_http(min(run.n, 3000), run.run_id, run.log_dir)


async def _idle(run: Run) -> SectionResult:
    return await run_idle_latency(run.run_id, run.log_dir)


async def _priority(run: Run) -> list[SectionResult]:
    return await run_priority(run.run_id)


async def _email(run: Run) -> list[SectionResult]:
    figures = await run_email_bench(min(run.n, 2000))
    method = (
        f"local SMTP sink (aiosmtpd, own process); {figures['concurrency']} concurrent senders; "
        "median of alternating rounds"
    )
    return [
        SectionResult(
            key="email_plain",
            label="plain aiosmtplib, connection per email",
            unit="emails/s",
            n=int(figures["n"]),
            completed=int(figures["n"]),
            rate=float(figures["per_connection_emails_per_s"]),
            method=method,
        ),
        SectionResult(
            key="email_notifier",
            label="notifier SMTP adapter (pooled)",
            unit="emails/s",
            n=int(figures["n"]),
            completed=int(figures["n"]),
            rate=float(figures["pooled_emails_per_s"]),
            method=f"{method}; pool of {figures['pool_size']} reused connections",
        ),
    ]


async def _files(run: Run) -> list[SectionResult]:
    # 3000x2000 photos take a third of a second each naively; a few dozen make the point.
    figures = await run_file_bench(max(10, min(40, run.n // 100)))
    n = int(figures["images"])
    method = (
        f"profile picture variants (64, 256, 512 px) of {figures['image_size']} JPEGs, "
        f"{figures['concurrency']} at a time"
    )
    return [
        SectionResult(
            key="files_naive",
            label="naive Pillow (full decode, 3 LANCZOS resizes)",
            unit="images/s",
            n=n,
            completed=n,
            rate=float(figures["naive_parallel_images_per_s"]),
            method=method,
        ),
        SectionResult(
            key="files_pipeline",
            label="file-processor pipeline (validate, scan, draft, variants)",
            unit="images/s",
            n=n,
            completed=n,
            rate=float(figures["pipeline_images_per_s"]),
            method=f"{method}; includes sha256, sniffing and scanning",
        ),
    ]


Section = Callable[[Run], Awaitable[SectionResult | list[SectionResult]]]
SECTIONS: dict[str, Section] = {
    "raw": _raw,
    "pg": _project_pg,
    "replicas": _replicas,
    "sqlite": _project_sqlite,
    "celery": _celery,
    "dramatiq": _dramatiq,
    "faststream": _faststream,
    "gateway": _gateway_http,
    "idle": _idle,
    "priority": _priority,
    "email": _email,
    "files": _files,
}


def _default_n() -> int:
    value = os.environ.get("PRS_BENCH_N")
    return int(value) if value else DEFAULT_N


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n",
        type=int,
        default=_default_n(),
        help=f"tasks (messages) per section; env PRS_BENCH_N, default {DEFAULT_N}",
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run, of: {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("PRS_BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="Celery result backend and Dramatiq completions; env PRS_BENCH_REDIS_URL",
    )
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.n < 1:
        parser.error("--n must be at least 1")
    return args


async def _run_all(run: Run, names: list[str]) -> list[SectionResult]:
    results: list[SectionResult] = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        produced = await SECTIONS[name](run)
        for result in produced if isinstance(produced, list) else [produced]:
            if result.error:
                print(f"  {name} failed: {result.error}", file=sys.stderr, flush=True)
                for key, tail in result.extra.items():
                    if key.endswith("_log_tail"):
                        print(f"  --- {key}\n{tail}", file=sys.stderr, flush=True)
            results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    names = [name for name in SECTIONS if name in args.only.split(",")]
    started = datetime.now(UTC)
    log_dir = Path(tempfile.mkdtemp(prefix="prs-bench-logs-"))
    run = Run(n=args.n, run_id=uuid.uuid4().hex[:10], log_dir=log_dir, redis_url=args.redis_url)
    results = asyncio.run(_run_all(run, names))
    cpus = os.cpu_count()
    header = (
        f"PRS Tasks benchmark: N={run.n} per section after an untimed warm-up of "
        f"{warmup_count(run.n)}; {cpus} CPUs; broker {redacted(amqp_url())}"
    )
    print(render(results, header))
    path = RESULTS_DIR / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    write_json(
        path,
        results,
        {
            "started_at": started.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "n": run.n,
            "warmup": warmup_count(run.n),
            "run_id": run.run_id,
            "host": {
                "cpus": cpus,
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "amqp_url": redacted(amqp_url()),
        },
    )
    print(f"\nresults: {path.relative_to(REPO_ROOT)}")
    failed = [r for r in results if not r.ok]
    if failed:
        # Keep the services' logs of a failed run for diagnosis.
        print(f"service logs: {log_dir}")
        return 1
    shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
