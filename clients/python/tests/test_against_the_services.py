"""The client against the five running services: every kind of task queued and awaited,
idempotent replays, 429s retried, failures as typed exceptions, an invoice downloaded, events
published through the outbox by the example PRS core, and the README's quickstart in a fresh
virtualenv."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from prs_client import (
    AsyncClient,
    Client,
    Conflict,
    NotFound,
    TaskFailed,
    TaskStatus,
    TaskTimeout,
    ValidationFailed,
)

from .conftest import RATE_LIMIT_BURST, REPO

CLIENT_DIR = REPO / "clients" / "python"
REPLICA_TIMEOUT = 30.0
TASK_TIMEOUT = 30


def run_core(stack: Any, prefix: str, tmp_path: Path) -> dict[str, Any]:
    """Run the example PRS core: it records and publishes an organization, a deal and a payment."""
    result = subprocess.run(
        [
            sys.executable,
            str(CLIENT_DIR / "examples" / "prs_core.py"),
            "--prefix",
            prefix,
            "--database",
            f"sqlite:///{tmp_path / f'{prefix}.sqlite3'}",
        ],
        env={
            **os.environ,
            "AMQP_URL": stack.env["AMQP_URL"],
            "PRS_NAMESPACE": stack.env["PRS_NAMESPACE"],
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"prs_core.py: {result.stdout}\n{result.stderr}"
    published: dict[str, Any] = json.loads(result.stdout)
    return published


def verify_when_replicated(client: Client, deal_id: str) -> Any:
    """Verify the deal, again while the platform's replica still catches up with the events
    (a salesperson not replicated yet rejects the deal, and a rejected deal may be verified again)."""
    deadline = time.monotonic() + REPLICA_TIMEOUT
    while True:
        task = client.queue_deal_processing(
            deal_id=deal_id, workflow_action="verify_deal", priority="high"
        )
        state = client.wait(task.task_id, timeout=TASK_TIMEOUT)
        if state.result and state.result.get("state") == "verified":
            return state
        assert time.monotonic() < deadline, f"deal {deal_id} not verified: {state}"
        time.sleep(0.5)


def notify_admins(client: Client, org: str, key: str | None = None, role: str = "admin") -> Any:
    """Queue the audit-report email to a role of ``org``: a task that needs no data."""
    return client.send_notification(
        "audit_report_ready",
        recipient_type="role",
        role=role,
        organization_id=org,
        idempotency_key=key,
    )


def test_a_deal_published_through_the_outbox_is_verified_invoiced_and_its_invoice_downloads(
    stack: Any, client: Client, tmp_path: Path
) -> None:
    core = run_core(stack, "outbox", tmp_path)
    assert core["events_published"] == 4
    deal_id = core["deal_id"]

    verified = verify_when_replicated(client, deal_id)
    assert verified.result["reasons"] == []
    for action in ("calculate_commission", "update_payment_status"):
        task = client.queue_deal_processing(deal_id=deal_id, workflow_action=action)
        assert client.wait(task.task_id, timeout=TASK_TIMEOUT).successful is True
    paid = client.list_tasks(task_type="deal.process_workflow", status="SUCCEEDED", limit=1).items[
        0
    ]
    assert paid.result is not None
    assert paid.result["paid_total"] == "4000.00"

    invoice = client.queue_deal_processing(deal_id=deal_id, workflow_action="generate_invoice")
    assert client.wait(invoice.task_id, timeout=TASK_TIMEOUT).result["state"] == "invoiced"
    pdf = client.download(invoice.task_id)
    assert pdf.media_type == "application/pdf"
    assert pdf.content.startswith(b"%PDF")

    # An invoiced deal cannot be verified again: the task fails at once, with the reason.
    again = client.queue_deal_processing(deal_id=deal_id, workflow_action="verify_deal")
    with pytest.raises(TaskFailed) as failed:
        client.wait(again.task_id, timeout=TASK_TIMEOUT)
    assert "verify_deal" in failed.value.reason
    assert failed.value.task.attempts == 1


def test_a_file_a_notification_a_report_and_every_process_are_queued_and_finish(
    stack: Any, client: Client, tmp_path: Path
) -> None:
    core = run_core(stack, "tasks", tmp_path)
    org = core["organization_id"]
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(picture, "PNG")
    queued = [
        client.queue_file_processing(picture.getvalue(), "profile_picture", filename="me.png"),
        client.send_notification(
            "payment_received", user_id=f"{org}-sales", organization_id=org, deal_id=core["deal_id"]
        ),
        client.generate_audit_report(organization_id=org, days=7),
        *(
            client.trigger_process(p)
            for p in ("verification_reminders", "commission_calculation", "overdue_detection")
        ),
    ]
    finished = [client.wait(task.task_id, timeout=TASK_TIMEOUT) for task in queued]
    assert [t.successful for t in finished] == [True] * len(queued), finished

    report = client.download(queued[2].task_id, format="csv")
    assert report.media_type == "text/csv"
    (summary,) = [r for r in client.list_reports() if r.organization_id == org]
    html = client.download_report(summary.report_id, format="html")
    assert b"<" in html.content
    statuses = {p.process_name: p.status for p in client.process_status()}
    assert statuses["overdue_detection"] == "SUCCEEDED"


def test_the_cleanup_plan_asks_every_service_and_removes_nothing(client: Client) -> None:
    queued = client.cleanup_plan()
    assert set(queued.tasks) == {
        "gateway",
        "deal-workflow",
        "file-processor",
        "notifier",
        "scheduler",
    }
    plans = {s: client.wait(t.task_id, timeout=TASK_TIMEOUT) for s, t in queued.tasks.items()}
    for service, state in plans.items():
        assert state.successful, (service, state)
        assert isinstance(state.result, dict), (service, state)
        assert state.result["service"] == service, state.result
        assert isinstance(state.result["sweeps"], list), (service, state.result)
    jobs = {s["job"] for state in plans.values() for s in (state.result or {})["sweeps"]}
    assert "system_cleanup" in jobs, jobs

    gateway_part = client.cleanup(jobs=["system_cleanup"])
    assert gateway_part["dry_run"] is True
    assert {s["job"] for s in gateway_part["sweeps"]} == {"system_cleanup"}


def test_a_burst_past_the_rate_limit_is_retried_after_429_and_every_call_is_accepted(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="prs_client")
    tasks = [
        client.send_notification(
            "audit_report_ready", recipient_type="role", role="admin", organization_id="burst-org"
        )
        for _ in range(RATE_LIMIT_BURST + 3)
    ]
    assert len({t.task_id for t in tasks}) == RATE_LIMIT_BURST + 3
    retried = [r.getMessage() for r in caplog.records if "retrying after 429" in r.getMessage()]
    assert retried, "no 429 was met"


def test_a_replayed_call_returns_the_first_task_and_a_reused_key_is_refused(
    client: Client,
) -> None:
    key = f"deal-1-verify-{uuid.uuid4().hex[:8]}"
    first = client.queue_deal_processing(
        deal_id="replay-deal", workflow_action="verify_deal", idempotency_key=key
    )
    again = client.queue_deal_processing(
        deal_id="replay-deal", workflow_action="verify_deal", idempotency_key=key
    )
    assert again.task_id == first.task_id
    with pytest.raises(ValidationFailed) as reused:
        client.queue_deal_processing(
            deal_id="replay-deal", workflow_action="generate_invoice", idempotency_key=key
        )
    assert [e.field for e in reused.value.errors] == ["Idempotency-Key"]
    # Without a key given, each call is its own task.
    one = notify_admins(client, "replay-org")
    other = notify_admins(client, "replay-org")
    assert one.task_id != other.task_id


def test_bad_input_and_unknown_tasks_raise_typed_errors_naming_the_field(client: Client) -> None:
    with pytest.raises(ValidationFailed) as invalid:
        client.queue_deal_processing(deal_id="not a valid id!", workflow_action="verify_deal")
    assert [e.field for e in invalid.value.errors] == ["deal_id"]
    with pytest.raises(NotFound):
        client.get_status(uuid.uuid4())


def test_the_readme_quickstart_runs_in_a_fresh_virtualenv(stack: Any, tmp_path: Path) -> None:
    readme = (CLIENT_DIR / "README.md").read_text()
    quickstart = re.search(r"## Quickstart.*?```python\n(.*?)```", readme, re.S)
    assert quickstart, "README.md has no python quickstart"
    # The quickstart's deal is the example core's first deal of organization demo-acme.
    run_core(stack, "demo-acme", tmp_path)
    code = (
        quickstart.group(1)
        .replace("http://127.0.0.1:8000", stack.gateway_url)
        .replace('api_key="dev-admin-key"', f'api_key="{stack.api_key}"')
    )
    assert code != quickstart.group(1)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        ["python3", "-m", "uv", "pip", "install", "--python", str(python), str(CLIENT_DIR)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    # The fresh environment has the client and its light dependencies, nothing of the platform.
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import prs_client, importlib.util as u; "
            "print(u.find_spec('prs_shared') is None, u.find_spec('aio_pika') is None)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split() == ["True", "True"]
    run = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode == 0, f"quickstart: {run.stdout}\n{run.stderr}"
    assert run.stdout.startswith("SUCCEEDED")


async def until_status(client: AsyncClient, task_id: Any, wanted: TaskStatus) -> None:
    deadline = time.monotonic() + REPLICA_TIMEOUT
    while (await client.get_status(task_id)).status != wanted:
        assert time.monotonic() < deadline, f"task {task_id} never {wanted}"
        await asyncio.sleep(0.1)


async def test_the_async_client_times_out_cancels_and_retries_a_task_waiting_for_its_deal(
    stack: Any,
) -> None:
    async with AsyncClient(stack.gateway_url, stack.api_key) as client:
        # A deal PRS never announced: deal-workflow retries the task, with growing delays.
        task = await client.queue_deal_processing(
            deal_id=f"never-{uuid.uuid4().hex[:8]}", workflow_action="verify_deal"
        )
        await until_status(client, task.task_id, TaskStatus.RETRYING)
        with pytest.raises(TaskTimeout) as timeout:
            await client.wait(task.task_id, timeout=0)
        assert not timeout.value.task.status.terminal

        while True:  # cancellable while it waits for a retry, not while an attempt runs
            await until_status(client, task.task_id, TaskStatus.RETRYING)
            try:
                cancelled = await client.cancel(task.task_id)
                break
            except Conflict:
                continue
        assert cancelled.cancel_requested is True
        with pytest.raises(TaskFailed) as failed:
            await client.wait(task.task_id, timeout=TASK_TIMEOUT)
        assert failed.value.status == TaskStatus.CANCELLED

        again = await client.retry(task.task_id)
        assert again.task_id == task.task_id
        assert (await client.get_status(task.task_id)).status in {
            TaskStatus.QUEUED,
            TaskStatus.STARTED,
            TaskStatus.RETRYING,
        }
