"""Audit reports: sections as JSON, CSV and HTML in the file store, progress in the reports row."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from sqlalchemy import select, update

from deal_workflow.models import AuditEntry, Report
from deal_workflow.testing import NOW, Harness, deal, organization, payment, user, workflow
from prs_shared.messaging import deals as dw
from prs_shared.messaging import prs_events as prs
from prs_shared.messaging.deals import WorkflowAction as A
from prs_shared.messaging.files import FILE_REJECTED, FileRejected
from prs_shared.storage import LocalFileStore


async def _activity(harness: Harness) -> None:
    await harness.given(
        (prs.ORGANIZATION_CREATED, organization()),
        (prs.ORGANIZATION_CREATED, organization("org-2")),
        (prs.USER_CREATED, user()),
        (prs.USER_CREATED, user("boss", roles=["admin"])),
        (prs.USER_CHANGED, user("boss", roles=["admin", "finance"], active=False, version=2)),
        (prs.USER_CREATED, user("sp-2", "org-2")),
        (prs.DEAL_CREATED, deal(client_name="<script>alert(1)</script>")),
        (
            prs.DEAL_CREATED,
            deal("deal-2", client_id="c-2", client_name="=SUM(A1:A9)", salesperson_id="ghost"),
        ),
        (prs.DEAL_CREATED, deal("old", client_id="c-3", created_at=NOW - timedelta(days=90))),
        (prs.DEAL_CREATED, deal("deal-4", "org-2", salesperson_id="sp-2")),
        (prs.PAYMENT_RECORDED, payment("p-1", amount="300.00")),
        (
            FILE_REJECTED,
            FileRejected(
                file_type="deal_attachment",
                original_filename="scan.pdf",
                reason="macro",
                deal_id="deal-1",
            ),
        ),
    )
    await harness.handle(dw.PROCESS_DEAL_WORKFLOW, workflow("deal-1", A.VERIFY_DEAL))
    await harness.handle(dw.PROCESS_DEAL_WORKFLOW, workflow("deal-2", A.VERIFY_DEAL))


async def test_a_comprehensive_report_has_every_section_in_three_formats(
    harness: Harness, file_store: LocalFileStore
) -> None:
    await _activity(harness)
    done = await harness.handle(
        dw.GENERATE_AUDIT_REPORT, dw.GenerateAuditReport(report_type="comprehensive", days=30)
    )
    assert done.result is not None
    report_id = done.result["report_id"]
    files = done.result["files"]
    assert files == {
        "json": f"reports/{report_id}.json",
        "csv": f"reports/{report_id}.csv",
        "html": f"reports/{report_id}.html",
    }
    (event,) = done.of(dw.AUDIT_REPORT_GENERATED)
    assert event["files"] == files
    assert event["report_type"] == "comprehensive"

    document = json.loads(file_store.get(files["json"]))
    sections = document["sections"]
    assert list(sections) == ["deals", "payments", "users", "security"]
    assert sections["deals"]["summary"]["deals created"] == "3"  # 'old' is outside 30 days
    assert sections["deals"]["summary"]["state rejected"] == "1"
    assert sections["payments"]["summary"]["received USD"] == "300.00"
    # Read as of the report, not from the stored status, which no update_payment_status changed.
    (deal_1,) = [r for r in sections["deals"]["rows"] if r["deal_id"] == "deal-1"]
    assert deal_1["payment_status"] == "partially_paid"
    assert sections["payments"]["summary"]["deals partially_paid now"] == "1"
    assert sections["users"]["summary"]["inactive"] == "1"
    security = sections["security"]
    assert security["summary"]["audit chains intact"] == security["summary"]["audit chains checked"]
    details = [r["detail"] for r in security["rows"]]
    assert "roles ['admin'] -> ['admin', 'finance']; deactivated" in details
    assert any(d.startswith("attachment rejected: macro") for d in details)
    assert any(d.startswith("deal rejected: salesperson ghost is not known") for d in details)

    rows = list(csv.DictReader(io.StringIO(file_store.get(files["csv"]).decode())))
    assert {"section": "deals", "record": "summary", "field": "deals created", "value": "3"} in rows
    # A value that a spreadsheet would run as a formula is defused.
    assert {
        "section": "deals",
        "record": "2",
        "field": "client_name",
        "value": "'=SUM(A1:A9)",
    } in rows
    assert all(not r["value"].startswith("=") for r in rows)

    html = file_store.get(files["html"]).decode()
    assert "<h2>Security</h2>" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html

    async with harness.sessions() as session:
        row = await session.get(Report, report_id)
    assert row is not None
    assert (row.status, row.progress, row.sections_done, row.files) == (
        "completed",
        100,
        ["deals", "payments", "users", "security"],
        files,
    )


async def test_a_report_for_one_organization_and_type_holds_only_that(
    harness: Harness, file_store: LocalFileStore
) -> None:
    await _activity(harness)
    done = await harness.handle(
        dw.GENERATE_AUDIT_REPORT,
        dw.GenerateAuditReport(report_type="deals", days=365, organization_id="org-2"),
    )
    assert done.result is not None
    document = json.loads(file_store.get(done.result["files"]["json"]))
    assert list(document["sections"]) == ["deals"]
    assert [r["deal_id"] for r in document["sections"]["deals"]["rows"]] == ["deal-4"]


async def test_the_security_section_reports_a_tampered_audit_log(
    harness: Harness, file_store: LocalFileStore
) -> None:
    await _activity(harness)
    async with harness.sessions() as session, session.begin():
        await session.execute(
            update(AuditEntry)
            .where(AuditEntry.chain == "org-1", AuditEntry.seq == 1)
            .values(reason="nothing to see")
        )
    done = await harness.handle(
        dw.GENERATE_AUDIT_REPORT, dw.GenerateAuditReport(report_type="security", days=7)
    )
    assert done.result is not None
    document = json.loads(file_store.get(done.result["files"]["json"]))
    rows = document["sections"]["security"]["rows"]
    broken = [r for r in rows if r["kind"] == "audit chain broken"]
    assert broken
    assert broken[0]["entity"] == "org-1"
    assert "entry 1 was altered" in broken[0]["detail"]
    async with harness.sessions() as session:
        assert (await session.execute(select(Report.status))).scalar_one() == "completed"
