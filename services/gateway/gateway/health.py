"""System health as the seed lists it: database, broker, services, disk, SMTP, ClamAV.

One function computes the report for the API's ``/system-health/``, the console and the
scheduled ``health_monitoring`` check (:mod:`gateway.health_monitor`): it takes the resources
it reads (:class:`HealthSources`, which a running :class:`~prs_shared.service.ServiceHost`
is) and the gateway's settings, not the API's state.

The status:

- **unhealthy** — the database, the broker or the SMTP server is unreachable. Without the
  first two nothing works; without SMTP no password reset, verification or payment email
  reaches anyone, and the requests pile up in retries and dead letters.
- **degraded** — something needs a look but work goes on: a service without a recent
  heartbeat, a queue without a consumer, less than 10% disk free (data directory or file
  store), ClamAV unreachable (uploads wait for it).
- **healthy** — none of that.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from aio_pika.abc import AbstractConnection
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gateway.broker_view import SERVICES, queue_stats
from gateway.dead_letter_counts import waiting_by_queue
from gateway.models import ServiceHeartbeat
from gateway.settings import GatewaySettings
from prs_shared.db.engine import SessionFactory
from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.topology import Topology

DISK_WARN_FRACTION = 0.10
PROBE_TIMEOUT = 3.0
CRITICAL = {
    "database": "database unreachable",
    "broker": "broker unreachable",
    "smtp": "SMTP server unreachable",
}
"""The checks whose failure makes the system unhealthy, and the reason each then gives."""
STATUSES = ("healthy", "degraded", "unhealthy")
"""The overall statuses, in increasing order of trouble (the gauge's 0, 1, 2)."""


class HealthSources(Protocol):
    """What the checks read; a started ServiceHost has all of it."""

    @property
    def engine(self) -> AsyncEngine: ...
    @property
    def sessions(self) -> SessionFactory: ...
    @property
    def connection(self) -> AbstractConnection: ...
    @property
    def topology(self) -> Topology: ...


@asynccontextmanager
async def _reading(
    sources: HealthSources, session: AsyncSession | None
) -> AsyncIterator[AsyncSession]:
    if session is not None:
        yield session
        return
    async with sources.sessions() as own:
        yield own


async def system_health(
    sources: HealthSources,
    settings: GatewaySettings,
    organization_id: str | None,
    *,
    session: AsyncSession | None = None,
) -> dict[str, Any]:
    """The report; a queue's ``dead_letters`` counts only ``organization_id``'s when not None.

    ``session``: read the database through it rather than through sessions of its own. A
    handler passes its own: on SQLite, its open transaction holds the only write lock, which a
    second session of the same process would wait for in vain.
    """
    reasons: list[str] = []
    checks: dict[str, Any] = {}

    t0 = time.perf_counter()
    try:
        if session is not None:
            await session.execute(text("SELECT 1"))
        else:
            async with sources.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = {
            "status": "ok",
            "latency_ms": round((time.perf_counter() - t0) * 1000, 2),
        }
    except Exception as exc:
        checks["database"] = {"status": "error", "error": type(exc).__name__}
        reasons.append(CRITICAL["database"])

    waiting: dict[str, int] = {}
    try:
        async with _reading(sources, session) as reader:
            waiting = await waiting_by_queue(reader, organization_id)
    except Exception:  # the database check above has said so already
        waiting = {}
    try:
        stats = await queue_stats(sources.connection, sources.topology)
        checks["broker"] = {
            "status": "ok",
            "queues": [
                {
                    "name": s.name,
                    "messages": s.messages,
                    "consumers": s.consumers,
                    # Archived and not replayed: the .dlq itself is drained at once.
                    "dead_letters": waiting.get(s.name, 0),
                }
                for s in stats
            ],
        }
        for s in stats:
            if s.consumers == 0:
                reasons.append(f"queue {s.name} has no consumer")
    except Exception as exc:
        checks["broker"] = {"status": "error", "error": type(exc).__name__}
        reasons.append(CRITICAL["broker"])

    now = utcnow()
    try:
        async with _reading(sources, session) as reader:
            beats = (await reader.execute(select(ServiceHeartbeat))).scalars().all()
    except Exception:  # reported by the database check; every service then reads as down
        beats = []
    stale_after = timedelta(seconds=settings.heartbeat_stale_seconds)
    services: dict[str, Any] = {}
    for name in SERVICES:
        mine = [b for b in beats if b.service == name]
        live = [b for b in mine if now - b.last_seen <= stale_after]
        last = max((b.last_seen for b in mine), default=None)
        services[name] = {
            "status": "up" if live else "down",
            "instances": len(live),
            "last_heartbeat": last.isoformat() if last else None,
            "in_flight": sum(b.in_flight for b in live),
        }
        if not live:
            reasons.append(f"service {name} has no recent heartbeat")
    checks["services"] = services

    checks["disk"] = _disk(settings.data_dir, settings.resolved_file_store_dir())
    if checks["disk"]["status"] != "ok":
        reasons.append("less than 10% disk space free")

    checks["smtp"] = await _smtp(settings)
    if checks["smtp"]["status"] == "error":
        reasons.append(CRITICAL["smtp"])

    checks["clamav"] = await _clamav(settings)
    if checks["clamav"]["status"] == "error":
        reasons.append("ClamAV unreachable")

    critical = any(checks[name]["status"] == "error" for name in CRITICAL)
    overall = "unhealthy" if critical else ("degraded" if reasons else "healthy")
    return {"status": overall, "reasons": reasons, "checked_at": now.isoformat(), "checks": checks}


def _usage(path: Path) -> dict[str, Any]:
    resolved = path.resolve()
    # A directory not made yet lives on the filesystem of its nearest existing parent.
    while not resolved.exists() and resolved != resolved.parent:
        resolved = resolved.parent
    usage = shutil.disk_usage(resolved)
    free_fraction = usage.free / usage.total if usage.total else 0
    return {
        "status": "ok" if free_fraction >= DISK_WARN_FRACTION else "low",
        "free_bytes": usage.free,
        "total_bytes": usage.total,
    }


def _disk(data_dir: Path, file_store: Path) -> dict[str, Any]:
    """The data directory's space (top level, as before) and the file store's."""
    data = _usage(data_dir)
    files = _usage(file_store)
    low = data["status"] != "ok" or files["status"] != "ok"
    return {**data, "status": "low" if low else "ok", "file_store": files}


async def _reachable(host: str, port: int) -> str | None:
    """None when a TCP connection opens, else the error's name."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        return type(exc).__name__
    writer.close()
    # Closed by the other side first: it was reachable all the same.
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def _smtp(settings: GatewaySettings) -> dict[str, Any]:
    host = settings.smtp_host
    if not host:
        return {"status": "not_configured", "detail": "email goes to the file outbox"}
    error = await _reachable(host, settings.smtp_port)
    if error is not None:
        return {"status": "error", "host": host, "port": settings.smtp_port, "error": error}
    return {"status": "ok", "host": host, "port": settings.smtp_port}


async def _clamav(settings: GatewaySettings) -> dict[str, Any]:
    """clamd answers ``PING`` with ``PONG`` (the file-processor's ``PRS_CLAMD_URL``)."""
    url = settings.clamd_url
    if not url:
        return {"status": "not_configured", "detail": "uploads are scanned by the built-in scanner"}
    parts = urlsplit(url)
    try:
        if parts.scheme == "unix":
            opened = asyncio.open_unix_connection(parts.path)
        else:
            opened = asyncio.open_connection(parts.hostname or "localhost", parts.port or 3310)
        reader, writer = await asyncio.wait_for(opened, PROBE_TIMEOUT)
        try:
            writer.write(b"zPING\0")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(16), PROBE_TIMEOUT)
        finally:
            writer.close()
    except (OSError, TimeoutError) as exc:
        return {"status": "error", "error": type(exc).__name__}
    if answer.rstrip(b"\0\n") != b"PONG":
        return {"status": "error", "error": "unexpected answer"}
    return {"status": "ok"}
