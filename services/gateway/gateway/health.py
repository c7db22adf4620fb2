"""System health as the seed lists it: database, broker, services, disk, SMTP."""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select, text

from gateway.broker_view import SERVICES, queue_stats
from gateway.dead_letter_counts import waiting_by_queue
from gateway.models import ServiceHeartbeat
from gateway.state import GatewayState
from prs_shared.messaging.envelope import utcnow

DISK_WARN_FRACTION = 0.10


async def system_health(state: GatewayState, organization_id: str | None) -> dict[str, Any]:
    """The report; a queue's ``dead_letters`` counts only ``organization_id``'s when not None."""
    reasons: list[str] = []
    checks: dict[str, Any] = {}

    t0 = time.perf_counter()
    try:
        async with state.host.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = {
            "status": "ok",
            "latency_ms": round((time.perf_counter() - t0) * 1000, 2),
        }
    except Exception as exc:
        checks["database"] = {"status": "error", "error": type(exc).__name__}
        reasons.append("database unreachable")

    waiting: dict[str, int] = {}
    try:
        async with state.host.sessions() as session:
            waiting = await waiting_by_queue(session, organization_id)
    except Exception:  # the database check above has said so already
        waiting = {}
    try:
        stats = await queue_stats(state.host.connection, state.host.topology)
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
        reasons.append("broker unreachable")

    async with state.host.sessions() as session:
        beats = (await session.execute(select(ServiceHeartbeat))).scalars().all()
    stale_after = timedelta(seconds=state.settings.heartbeat_stale_seconds)
    now = utcnow()
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

    data_dir = state.host.settings.data_dir.resolve()
    usage = shutil.disk_usage(data_dir if data_dir.exists() else data_dir.anchor)
    free_fraction = usage.free / usage.total if usage.total else 0
    checks["disk"] = {
        "status": "ok" if free_fraction >= DISK_WARN_FRACTION else "low",
        "free_bytes": usage.free,
        "total_bytes": usage.total,
    }
    if free_fraction < DISK_WARN_FRACTION:
        reasons.append("less than 10% disk space free")

    checks["smtp"] = await _smtp(state)
    if checks["smtp"]["status"] == "error":
        reasons.append("SMTP server unreachable")

    critical = checks["database"]["status"] != "ok" or checks["broker"]["status"] != "ok"
    overall = "unhealthy" if critical else ("degraded" if reasons else "healthy")
    return {"status": overall, "reasons": reasons, "checked_at": now.isoformat(), "checks": checks}


async def _smtp(state: GatewayState) -> dict[str, Any]:
    host = state.settings.smtp_host
    if not host:
        return {"status": "not_configured", "detail": "email goes to the file outbox"}
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, state.settings.smtp_port), 3
        )
        writer.close()
        await writer.wait_closed()
        return {"status": "ok", "host": host, "port": state.settings.smtp_port}
    except (OSError, TimeoutError) as exc:
        return {"status": "error", "host": host, "error": type(exc).__name__}
