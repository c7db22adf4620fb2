"""End to end: demo data published as PRS would publish it, and a deal taken through its workflow.

`prs seed-demo` publishes organizations, users, deals and payments; the deal-workflow and notifier
services replicate them. Then, through the gateway and the `prs` command: the valid deal is
verified, its commission calculated, its payment status updated and its invoice generated; a
transition its state forbids fails at once, naming the state and the action; the business
processes and an audit report run; the invoice and the report download; the salesperson's
email lands in the notifier's outbox; monitor and cleanup see what happened.
"""

from __future__ import annotations

import io
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from .conftest import SERVICES, Stack

WORKFLOW_ACTIONS = (
    "verify_deal",
    "calculate_commission",
    "update_payment_status",
    "generate_invoice",
)
REPLICA_TIMEOUT = 30.0
TASK_TIMEOUT = "30"


def queue(stack: Stack, task_type: str, *args: str, ok: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """Queue one task with `prs manage-background-tasks --action=queue --wait`; its final state."""
    answer = stack.prs_json(
        "manage-background-tasks",
        "--action=queue",
        f"--task-type={task_type}",
        "--wait",
        f"--timeout={TASK_TIMEOUT}",
        *args,
        ok=ok,
    )
    (task,) = answer["tasks"]
    state: dict[str, Any] = task["state"]
    return state


def workflow(stack: Stack, deal_id: str, action: str, ok: tuple[int, ...] = (0,)) -> dict[str, Any]:
    return queue(
        stack,
        "deal_processing",
        f"--deal-id={deal_id}",
        f"--workflow-action={action}",
        "--priority=high",
        ok=ok,
    )


def verify_when_replicated(stack: Stack, deal_id: str) -> dict[str, Any]:
    """Verify the deal, again while the replica is still catching up with the demo data.

    A deal not replicated yet is retried by deal-workflow until it is (the task then succeeds);
    a salesperson not replicated yet rejects the deal, and a rejected deal may be verified again.
    """
    deadline = time.monotonic() + REPLICA_TIMEOUT
    while True:
        state = workflow(stack, deal_id, "verify_deal", ok=(0, 1))
        if state["status"] == "SUCCEEDED" and state["result"]["state"] == "verified":
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"deal {deal_id} not verified: {state}\n{stack.logs()}")
        time.sleep(0.5)


def wait_for(what: str, check: Any, stack: Stack, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:g}s\n{stack.logs()}")
        time.sleep(0.25)


def emails_to(outbox: Path, address: str) -> list[EmailMessage]:
    """The emails in the notifier's outbox addressed to ``address``."""
    found = []
    for path in sorted(outbox.glob("*.eml")) if outbox.is_dir() else []:
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        assert isinstance(message, EmailMessage)
        recipients = message["To"].addresses if message["To"] else ()
        if any(r.addr_spec == address for r in recipients):
            found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    return body.get_content() if isinstance(body, EmailMessage) else ""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_demo_deal_goes_through_its_whole_workflow(stack: Stack) -> None:
    stack.wait_ready()
    # Every service consuming means every replica's events queue is bound: nothing published
    # from here on falls through to the unrouted queue.
    diagnostic = stack.prs_json("manage-background-tasks", "--action=test")
    assert diagnostic["ok"] is True, diagnostic

    seeded = stack.prs_json("seed-demo")
    assert seeded["events_published"] == 22
    assert len(seeded["organizations"]) == 2
    deal_id = seeded["scenarios"]["valid"][0]
    org = deal_id.rsplit("-deal-", 1)[0]

    # The four workflow actions on the valid deal, in the order its lifecycle allows them.
    verified = verify_when_replicated(stack, deal_id)
    assert verified["result"]["reasons"] == []
    commission = workflow(stack, deal_id, "calculate_commission")
    assert commission["status"] == "SUCCEEDED", commission
    assert commission["result"]["amount"] == "600.00"  # a flat 5% of 12,000.00
    payment = workflow(stack, deal_id, "update_payment_status")
    assert payment["status"] == "SUCCEEDED", payment
    assert payment["result"]["current"] == "partially_paid"
    assert payment["result"]["paid_total"] == "4000.00"
    invoice = workflow(stack, deal_id, "generate_invoice")
    assert invoice["status"] == "SUCCEEDED", invoice
    assert invoice["result"]["state"] == "invoiced"
    assert {verified["task_type"], invoice["task_type"]} == {"deal.process_workflow"}

    # An invoiced deal cannot be verified again: failed at once, not retried.
    forbidden = workflow(stack, deal_id, "verify_deal", ok=(1,))
    assert forbidden["status"] == "FAILED", forbidden
    assert forbidden["attempts"] == 1
    assert "invoiced" in forbidden["error"]
    assert "verify_deal" in forbidden["error"]

    # The business processes and an audit report.
    for task_type in ("verification_reminders", "commission_calculation"):
        ran = queue(stack, task_type)
        assert ran["status"] == "SUCCEEDED", ran
    report = queue(stack, "audit_report", "--report-type=comprehensive", "--days=30")
    assert report["status"] == "SUCCEEDED", report

    with stack.http() as http:
        listed = http.get("/api/automated-processes/reports/")
        assert listed.status_code == 200, listed.text
        ours = [r for r in listed.json() if r["report_id"] == report["task_id"]]
        assert ours, f"report {report['task_id']} not listed: {listed.text}"
        assert "html" in ours[0]["formats"]
        html = http.get(ours[0]["download_urls"]["html"])
        assert html.status_code == 200, html.text
        assert html.headers["content-type"].startswith("text/html")
        assert "<html" in html.text.lower()
        assert org in html.text  # the demo organization's deals are in it

        pdf = http.get(f"/api/background-tasks/{invoice['task_id']}/download/")
        assert pdf.status_code == 200, pdf.text
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
        assert invoice["result"]["invoice_number"] in text

    # deal.verified → the notifier emails the salesperson (file backend: one .eml per email).
    outbox = stack.data_dir / "outbox"
    salesperson = f"salesperson@{org}.example"

    def approvals() -> list[EmailMessage]:
        return [
            m
            for m in emails_to(outbox, salesperson)
            if m["X-PRS-Notification-Type"] == "verification_approved"
        ]

    approved = wait_for(f"no verification email to {salesperson} in {outbox}", approvals, stack)
    assert f"deal {deal_id}" in text_of(approved[0])

    # What an operator sees afterwards.
    monitor = stack.prs_json("manage-background-tasks", "--action=monitor")
    assert monitor["health"]["status"] != "unhealthy", monitor["health"]
    assert "workflow" in {q["name"] for q in monitor["queues"]}
    assert {w["service"] for w in monitor["workers"] if w["alive"]} == set(SERVICES)

    # The forbidden transition was dead-lettered. The retention cleanup keeps it (it is young);
    # cleaning its queue lists it, then removes it.
    def dead_letters() -> Any:
        with stack.http() as http:
            listing = http.get("/api/dead-letters/", params={"replayed": "false", "limit": 1})
            assert listing.status_code == 200, listing.text
            body = listing.json()
        return body if body["total"] else None

    waiting = wait_for("no dead letter recorded", dead_letters, stack)
    plan = stack.prs_json("manage-background-tasks", "--action=cleanup", "--dry-run")
    assert plan["dry_run"] is True
    # Every service answered with its part: the gateway's registry, the file-processor's uploads.
    assert {name: answer["error"] for name, answer in plan["services"].items()} == dict.fromkeys(
        ("gateway", "deal-workflow", "file-processor", "notifier", "scheduler")
    )
    by_part = {(s["service"], s["kind"]): s["rows"] for s in plan["sweeps"]}
    assert by_part[("gateway", "dead_letters")] == 0
    assert ("file-processor", "quarantined_uploads") in by_part
    assert ("notifier", "inbox_ids") in by_part
    for name in waiting["by_queue"]:
        listing = stack.prs_json(
            "manage-background-tasks", "--action=cleanup", f"--queue={name}", "--dry-run"
        )
        assert listing["removed"] == 0
        cleaned = stack.prs_json("manage-background-tasks", "--action=cleanup", f"--queue={name}")
        assert cleaned["removed"] >= listing["dead_letters"]["waiting"]
    with stack.http() as http:
        left = http.get("/api/dead-letters/")
        assert left.status_code == 200, left.text
        assert left.json()["total"] == 0, left.text
