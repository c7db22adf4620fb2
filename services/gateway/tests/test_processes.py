"""The seed's automated-process endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.models import Report
from prs_shared.db.engine import create_engine, session_factory
from prs_shared.messaging.envelope import Envelope
from prs_shared.storage import LocalFileStore
from prs_shared.testing.fixtures import BrokerProbe, eventually

from .conftest import Gateway

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize(
    ("path", "body", "queue", "type_"),
    [
        (
            "trigger-verification-reminders/",
            None,
            "business_processes",
            "process.verification_reminders.run",
        ),
        (
            "trigger-commission-calculation/",
            None,
            "business_processes",
            "process.commission_calculation.run",
        ),
        ("trigger-overdue-detection/", None, "business_processes", "process.overdue_detection.run"),
        (
            "generate-audit-report/",
            {"report_type": "comprehensive", "days": 30},
            "reports",
            "report.audit.generate",
        ),
    ],
)
async def test_each_trigger_queues_its_process_command(
    gateway: Gateway,
    broker: BrokerProbe,
    path: str,
    body: dict[str, object] | None,
    queue: str,
    type_: str,
) -> None:
    response = await gateway.client.post(
        f"/api/automated-processes/{path}", json=body, headers=gateway.auth()
    )
    assert response.status_code == 202, response.text
    assert response.json()["queue"] == queue
    messages = await eventually(
        lambda: broker.get_all(gateway.settings.namespace + queue), message="process queued"
    )
    assert Envelope.model_validate_json(messages[0].body).type == type_


async def test_an_audit_report_with_bad_days_is_422(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/api/automated-processes/generate-audit-report/",
        json={"report_type": "comprehensive", "days": 0},
        headers=gateway.auth(),
    )
    assert response.status_code == 422
    assert "days" in response.json()["detail"]


async def test_process_status_reports_runs_and_refuses_unknown_names(gateway: Gateway) -> None:
    await gateway.client.post(
        "/api/automated-processes/trigger-commission-calculation/", headers=gateway.auth()
    )
    known = await gateway.client.get(
        "/api/automated-processes/process-status/",
        params={"process_name": "commission_calculation"},
        headers=gateway.auth(),
    )
    assert known.status_code == 200
    status = known.json()
    assert status["process_name"] == "commission_calculation"
    assert status["status"] == "QUEUED"
    assert status["counts"] == {"QUEUED": 1}
    assert (status["success_count"], status["failure_count"]) == (0, 0)
    assert status["cron"] == "0 */6 * * *"
    assert status["schedule"] == "every 6 hours"
    assert status["next_run"] is not None
    everything = await gateway.client.get(
        "/api/automated-processes/process-status/", headers=gateway.auth()
    )
    names = [p["process_name"] for p in everything.json()]
    assert names == [
        "deal_verification_reminders",
        "commission_calculation",
        "audit_report_generation",
        "overdue_detection",
        "system_cleanup",
        "health_monitoring",
        "task_monitoring",
        "failed_task_cleanup",
    ]
    unknown = await gateway.client.get(
        "/api/automated-processes/process-status/",
        params={"process_name": "nope"},
        headers=gateway.auth(),
    )
    assert unknown.status_code == 404
    assert "commission_calculation" in unknown.json()["detail"]


async def test_system_health_covers_database_broker_services_disk_and_smtp(
    gateway: Gateway,
) -> None:
    async def gateway_beat_seen() -> dict[str, object] | None:
        r = await gateway.client.get(
            "/api/automated-processes/system-health/", headers=gateway.auth()
        )
        body: dict[str, object] = r.json()
        checks = body["checks"]
        assert isinstance(checks, dict)
        return body if checks["services"]["gateway"]["status"] == "up" else None

    health = await eventually(gateway_beat_seen, message="gateway heartbeat")
    checks = health["checks"]
    assert isinstance(checks, dict)
    assert checks["database"]["status"] == "ok"
    assert checks["broker"]["status"] == "ok"
    queues = {q["name"]: q for q in checks["broker"]["queues"]}
    assert queues[gateway.settings.namespace + "monitoring"]["consumers"] == 1
    assert checks["disk"]["free_bytes"] > 0
    assert checks["smtp"]["status"] == "not_configured"
    # Only the gateway runs here: the other services are reported down, with reasons.
    assert health["status"] == "degraded"
    assert "service notifier has no recent heartbeat" in health["reasons"]


async def test_a_finished_report_is_listed_and_downloadable_by_its_organization_only(
    gateway: Gateway, database_url: str
) -> None:
    store = LocalFileStore(gateway.settings.resolved_file_store_dir())
    store.put("reports/r1.html", b"<h1>Audit</h1>")
    store.put("reports/r1.csv", b"section,value\n")
    engine = create_engine(database_url)
    async with session_factory(engine)() as session, session.begin():
        session.add(
            Report(
                report_id="r1",
                organization_id="org-a",
                report_type="comprehensive",
                days=30,
                files={"html": "reports/r1.html", "csv": "reports/r1.csv"},
                generated_at=datetime.now(UTC),
            )
        )
    await engine.dispose()
    a = await gateway.make_key("viewer", "org-a")
    b = await gateway.make_key("viewer", "org-b")
    listed = await gateway.client.get("/api/automated-processes/reports/", headers=gateway.auth(a))
    [report] = listed.json()
    assert report["formats"] == ["csv", "html"]
    html = await gateway.client.get(report["download_urls"]["html"], headers=gateway.auth(a))
    assert html.status_code == 200
    assert html.content == b"<h1>Audit</h1>"
    assert html.headers["content-type"].startswith("text/html")
    assert (
        await gateway.client.get(report["download_urls"]["csv"], headers=gateway.auth(b))
    ).status_code == 404
    missing = await gateway.client.get(
        "/api/automated-processes/reports/r1/download",
        params={"format": "json"},
        headers=gateway.auth(a),
    )
    assert missing.status_code == 404
