"""The scheduled health check (``schedule.system_health_check``, job ``health_monitoring``).

Every run records a snapshot of :func:`gateway.health.system_health` for the whole system,
sets the ``prs_system_health_*`` gauges, and tells the operators (the notifier's
``PRS_OPERATOR_EMAILS``) by email when an incident begins and when it ends.

An incident is the status **unhealthy** (database, broker or SMTP unreachable). The previous
snapshot's status decides, so an incident sends one email however many checks it lasts, and
leaving it (for degraded or healthy) sends one recovery email. Degraded alone (a service
without heartbeat, a queue without consumer, low disk, ClamAV) emails nobody: it comes and
goes with every deployment; it shows in the history, the gauges and the Prometheus alert.

When the SMTP server is what is down, the incident email waits in the notifier's retries like
any other email; the gauge and the alert rule say so meanwhile.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.health import CRITICAL, STATUSES, HealthSources, system_health
from gateway.models import HealthSnapshot
from gateway.settings import GatewaySettings
from prs_shared.db.locks import serialize
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.notifications import (
    SEND_NOTIFICATION,
    NotificationType,
    SendNotification,
)
from prs_shared.messaging.schedule import ScheduleTick

log = logging.getLogger(__name__)

INCIDENT = "unhealthy"
HEALTH_SNAPSHOT_LOCK = 0x5052_5348  # "PRSH": the health history's writer

HEALTH_STATUS = Gauge(
    "prs_system_health_status",
    "Status of the latest scheduled health check: 0 healthy, 1 degraded, 2 unhealthy. Every "
    "gateway replica reads the same table: aggregate with max, not sum.",
)
HEALTH_CHECK = Gauge(
    "prs_system_health_check",
    "1 when a check of the latest scheduled health check passed, 0 when it failed; checks "
    "not configured (SMTP, ClamAV) have no series.",
    ["check"],
)


def notification_for(previous: str | None, current: str) -> NotificationType | None:
    """What the operators are told when the status goes from ``previous`` to ``current``.

    ``previous`` is None before the first snapshot: a system unhealthy from its first check
    is an incident too.
    """
    was = previous == INCIDENT
    now = current == INCIDENT
    if now and not was:
        return NotificationType.SYSTEM_UNHEALTHY
    if was and not now:
        return NotificationType.SYSTEM_RECOVERED
    return None


def check_results(checks: dict[str, Any]) -> dict[str, bool]:
    """Whether each check passed, for the per-check gauge (unconfigured ones left out)."""
    results: dict[str, bool] = {}
    for name in ("database", "broker", "smtp", "clamav", "disk"):
        status = checks.get(name, {}).get("status")
        if status is not None and status != "not_configured":
            results[name] = status == "ok"
    services = checks.get("services", {})
    results["services"] = all(s.get("status") == "up" for s in services.values())
    return results


def set_gauges(status: str, checks: dict[str, Any]) -> None:
    HEALTH_STATUS.set(STATUSES.index(status) if status in STATUSES else len(STATUSES) - 1)
    HEALTH_CHECK.clear()
    for name, passed in check_results(checks).items():
        HEALTH_CHECK.labels(name).set(1 if passed else 0)


async def latest_snapshot(session: AsyncSession) -> HealthSnapshot | None:
    found: HealthSnapshot | None = (
        await session.execute(
            select(HealthSnapshot)
            .order_by(HealthSnapshot.at.desc(), HealthSnapshot.snapshot_id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return found


async def refresh_gauges(session: AsyncSession) -> None:
    """Set the gauges from the latest snapshot (each replica's /metrics shows the same). Left
    as they were if the database fails, so that /metrics still answers."""
    try:
        latest = await latest_snapshot(session)
    except Exception as exc:
        log.warning("health gauges not refreshed: %s", type(exc).__name__)
        return
    if latest is not None:
        set_gauges(latest.status, latest.checks)


@dataclass
class HealthMonitor:
    """The check's dependencies: the settings, and the running host whose connections it reads.

    The host is attached after it is built, because it is built from the handler list this
    monitor is part of.
    """

    settings: GatewaySettings
    _sources: HealthSources | None = field(default=None, repr=False)

    def attach(self, sources: HealthSources) -> None:
        self._sources = sources

    @property
    def sources(self) -> HealthSources:
        if self._sources is None:
            raise RuntimeError("the health monitor runs only in a started gateway host")
        return self._sources


def _incident_data(report: dict[str, Any], previous: str | None) -> dict[str, Any]:
    reasons = list(report["reasons"])
    return {
        "status": report["status"],
        "previous_status": previous,
        # What makes it unhealthy, apart from the rest (a service down, a queue unconsumed).
        "causes": [r for r in reasons if r in CRITICAL.values()],
        "reasons": reasons[:50],
        "checked_at": report["checked_at"],
    }


async def handle_system_health_check(
    payload: ScheduleTick, ctx: HandlerContext, deps: HealthMonitor
) -> dict[str, Any]:
    """Record a snapshot; on the start or the end of an incident, email the operators.

    The snapshot and the notification commit together with this tick's inbox record: a
    redelivered tick records nothing twice and sends nothing twice.
    """
    report = await system_health(deps.sources, deps.settings, None, session=ctx.session)
    # Two gateway replicas handling two ticks at once would both read the same previous
    # snapshot, and both email the same incident: the second waits for the first's commit.
    await serialize(ctx.session, HEALTH_SNAPSHOT_LOCK)
    previous = await latest_snapshot(ctx.session)
    previous_status = previous.status if previous is not None else None
    status: str = report["status"]
    kind = notification_for(previous_status, status)
    snapshot = HealthSnapshot(
        snapshot_id=str(uuid.uuid4()),
        at=datetime.fromisoformat(report["checked_at"]),
        status=status,
        reasons=report["reasons"],
        checks=report["checks"],
        notified=kind.value if kind is not None else None,
    )
    ctx.session.add(snapshot)
    if kind is not None:
        command = SendNotification(
            notification_type=kind,
            recipient_type="operators",
            additional_data=_incident_data(report, previous_status),
        )
        ctx.caused(SEND_NOTIFICATION.type, command, organization_id=None)
    set_gauges(status, report["checks"])
    return {
        "snapshot_id": snapshot.snapshot_id,
        "status": status,
        "previous_status": previous_status,
        "notified": snapshot.notified,
    }
