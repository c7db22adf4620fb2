"""The scheduled health check: each ``schedule.system_health_check`` tick records a snapshot,
listed newest first to admins and operators of no organization, exported as gauges; an
unreachable SMTP server is an incident, announced to the operators once."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.state import GatewayState
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.notifications import SEND_NOTIFICATION
from prs_shared.messaging.schedule import SYSTEM_HEALTH_CHECK, ScheduleTick
from prs_shared.testing.fixtures import BrokerProbe, eventually

from .conftest import Gateway

pytestmark = pytest.mark.asyncio

HISTORY = "/api/automated-processes/system-health/history/"


def closed_port() -> int:
    """A port nothing listens on (bound for a moment, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def health_tick(gateway: Gateway) -> None:
    state: GatewayState = gateway.app.state.gateway
    tick = ScheduleTick(job="health_monitoring", scheduled_for=datetime.now(UTC))
    await state.host.publisher.publish(
        Envelope(type=SYSTEM_HEALTH_CHECK.type, payload=tick.model_dump(mode="json"))
    )


async def history(gateway: Gateway, **params: Any) -> dict[str, Any]:
    response = await gateway.client.get(HISTORY, params=params, headers=gateway.auth())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def snapshots_after_tick(gateway: Gateway, count: int) -> list[dict[str, Any]]:
    await health_tick(gateway)

    async def recorded() -> list[dict[str, Any]] | None:
        page = await history(gateway)
        return page["items"] if page["total"] >= count else None

    items: list[dict[str, Any]] = await eventually(recorded, message=f"snapshot {count}")
    return items


async def gauges(gateway: Gateway) -> dict[str, float]:
    response = await gateway.client.get("/metrics")
    assert response.status_code == 200
    return {
        sample.labels.get("check", sample.name): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name in ("prs_system_health_status", "prs_system_health_check")
    }


async def test_each_tick_records_a_snapshot_listed_newest_first_to_operators_of_no_organization(
    gateway: Gateway, broker: BrokerProbe
) -> None:
    await snapshots_after_tick(gateway, 1)
    items = await snapshots_after_tick(gateway, 2)
    newer, older = items
    assert newer["at"] > older["at"]
    for snapshot in items:
        # Only the gateway runs here: the other services are down, SMTP is not configured.
        assert snapshot["status"] == "degraded"
        assert "service notifier has no recent heartbeat" in snapshot["reasons"]
        assert snapshot["checks"]["database"]["status"] == "ok"
        assert snapshot["checks"]["broker"]["status"] == "ok"
        assert snapshot["checks"]["disk"]["file_store"]["free_bytes"] > 0
        assert snapshot["checks"]["smtp"]["status"] == "not_configured"
        assert snapshot["notified"] is None

    assert [s["snapshot_id"] for s in (await history(gateway, limit=1))["items"]] == [
        newer["snapshot_id"]
    ]
    since = await history(gateway, since=newer["at"])
    assert [s["snapshot_id"] for s in since["items"]] == [newer["snapshot_id"]]
    until = await history(gateway, until=newer["at"])
    assert [s["snapshot_id"] for s in until["items"]] == [older["snapshot_id"]]
    assert until["total"] == 1

    # System-wide: an operator of no organization reads it; a key of an organization, or a
    # viewer, does not.
    operator = await gateway.make_key("operator")
    scoped_operator = await gateway.make_key("operator", "org-a")
    viewer = await gateway.make_key("viewer")
    assert (await gateway.client.get(HISTORY, headers=gateway.auth(operator))).status_code == 200
    scoped = await gateway.client.get(HISTORY, headers=gateway.auth(scoped_operator))
    assert scoped.status_code == 403
    assert "organization" in scoped.json()["detail"]
    assert (await gateway.client.get(HISTORY, headers=gateway.auth(viewer))).status_code == 403
    assert (await gateway.client.get(HISTORY)).status_code == 401

    bad = await gateway.client.get(HISTORY, params={"since": "yesterday"}, headers=gateway.auth())
    assert bad.status_code == 422
    assert "since" in bad.text
    naive = await gateway.client.get(
        HISTORY, params={"until": "2026-12-06T12:00:00"}, headers=gateway.auth()
    )
    assert naive.status_code == 422
    assert "until" in naive.text
    backwards = await gateway.client.get(
        HISTORY, params={"since": newer["at"], "until": older["at"]}, headers=gateway.auth()
    )
    assert backwards.status_code == 422

    exported = await gauges(gateway)
    assert exported["prs_system_health_status"] == 1  # degraded
    assert exported["database"] == 1
    assert exported["services"] == 0
    assert "smtp" not in exported

    # Degraded is no incident: nobody was emailed.
    state: GatewayState = gateway.app.state.gateway
    assert await broker.get_all(state.host.topology.queue("notifications")) == []


@pytest.mark.parametrize(
    "gateway_overrides", [{"smtp_host": "127.0.0.1", "smtp_port": closed_port()}]
)
async def test_an_unreachable_smtp_server_is_an_incident_announced_to_the_operators_once(
    gateway: Gateway, broker: BrokerProbe
) -> None:
    await snapshots_after_tick(gateway, 1)
    newer, first = await snapshots_after_tick(gateway, 2)
    assert first["status"] == newer["status"] == "unhealthy"
    assert "SMTP server unreachable" in first["reasons"]
    assert first["checks"]["smtp"]["status"] == "error"
    assert first["notified"] == "system_unhealthy"
    assert newer["notified"] is None  # the same incident

    state: GatewayState = gateway.app.state.gateway
    queue = state.host.topology.queue("notifications")

    async def commands() -> list[Envelope]:
        return [Envelope.model_validate_json(m.body) for m in await broker.get_all(queue)]

    (sent,) = await eventually(commands, message="the incident's notification.send")
    assert sent.type == SEND_NOTIFICATION.type
    assert sent.organization_id is None
    assert sent.payload["recipient_type"] == "operators"
    assert sent.payload["notification_type"] == "system_unhealthy"
    assert sent.payload["additional_data"]["causes"] == ["SMTP server unreachable"]
    assert await commands() == []

    exported = await gauges(gateway)
    assert exported["prs_system_health_status"] == 2
    assert exported["smtp"] == 0
