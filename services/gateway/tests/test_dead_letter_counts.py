"""Dead-letter numbers agree: the gauge, the queue view, system health, the dashboard and the
alert rule all count the gateway's archive (unreplayed rows), not the drained ``.dlq`` depth."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.state import GatewayState
from prs_shared.messaging.envelope import Envelope
from prs_shared.testing.fixtures import eventually
from prs_shared.testing.probe import EFFECT, Effect

from .conftest import Gateway

REPO = Path(__file__).resolve().parents[3]


async def _gauge(gateway: Gateway) -> dict[str, float]:
    response = await gateway.client.get("/metrics")
    assert response.status_code == 200
    return {
        sample.labels["queue"]: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "prs_dead_letter_archive"
    }


async def _dead_letter(gateway: Gateway, organization_id: str) -> str:
    """Put one message of ``organization_id`` on workflow.dlq and wait until it is archived."""
    state: GatewayState = gateway.app.state.gateway
    topology = state.host.topology
    command = Envelope(
        type=EFFECT.type,
        payload=Effect(key="dead").model_dump(),
        task_id=uuid.uuid4(),
        organization_id=organization_id,
    )
    await state.host.publisher.publish_raw(
        "",
        topology.dlq(topology.queue("workflow")),
        aio_pika.Message(
            json.dumps(command.model_dump(mode="json")).encode(),
            message_id=str(command.id),
            headers={"x-dead-letter-reason": "retries_exhausted", "x-attempts": 4},
        ),
    )

    async def archived() -> str | None:
        r = await gateway.client.get("/api/dead-letters/", headers=gateway.auth())
        items = r.json()["items"]
        return str(items[0]["id"]) if items else None

    return await eventually(archived, message="the dead letter archived")


def _queue_view(views: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(v for v in views if v["name"] == name)


async def test_an_archived_dead_letter_is_counted_by_the_gauge_and_every_view_until_replayed(
    gateway: Gateway,
) -> None:
    state: GatewayState = gateway.app.state.gateway
    workflow = state.host.topology.queue("workflow")
    assert (await _gauge(gateway))[workflow] == 0  # a series from the start, for the alert

    letter = await _dead_letter(gateway, "org-a")

    assert (await _gauge(gateway))[workflow] == 1
    queues = await gateway.client.get("/api/background-tasks/queues/", headers=gateway.auth())
    assert _queue_view(queues.json(), "workflow")["dead_letters_waiting"] == 1
    health = await gateway.client.get(
        "/api/automated-processes/system-health/", headers=gateway.auth()
    )
    broker = health.json()["checks"]["broker"]["queues"]
    assert _queue_view(broker, workflow)["dead_letters"] == 1

    # Another organization's key sees none of it; the owner's sees it.
    other = await gateway.make_key("operator", "org-b")
    mine = await gateway.make_key("operator", "org-a")
    for key, expected in ((other, 0), (mine, 1)):
        scoped = await gateway.client.get(
            "/api/background-tasks/queues/", headers=gateway.auth(key)
        )
        assert _queue_view(scoped.json(), "workflow")["dead_letters_waiting"] == expected

    replay = await gateway.client.post(f"/api/dead-letters/{letter}/replay", headers=gateway.auth())
    assert replay.status_code == 200, replay.text
    assert (await _gauge(gateway))[workflow] == 0
    queues = await gateway.client.get("/api/background-tasks/queues/", headers=gateway.auth())
    assert _queue_view(queues.json(), "workflow")["dead_letters_waiting"] == 0


def test_the_alert_rule_and_the_dashboard_count_the_archive_not_the_dlq_depth() -> None:
    rules = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())
    alert = next(
        rule
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "PrsDeadLetterQueueNotEmpty"
    )
    assert "prs_dead_letter_archive" in alert["expr"]
    assert "dlq" not in alert["expr"]
    dashboard = json.loads((REPO / "deploy/grafana/dashboards/prs-tasks.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert any("prs_dead_letter_archive" in e for e in exprs)
    assert not [e for e in exprs if 'rabbitmq_queue_messages{queue=~".*\\\\.dlq"}' in e]
