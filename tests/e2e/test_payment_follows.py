"""A payment recorded in PRS brings its deal's payment status up to date by itself: deal-workflow
queues ``update_payment_status`` for the deal (one task per payment), and the salesperson gets the
``payment_received`` email — nobody queues anything. (That the same payment again queues nothing
is deal-workflow's unit test, ``test_replica.py``.)"""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from typing import Any

import pytest

from .conftest import Stack
from .test_deal_journey import emails_to, text_of, wait_for

# How deal-workflow names the task a payment causes (deal_workflow/handlers/replica.py).
PAYMENT_TASKS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:prs:deal-workflow:payment-status")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_recorded_payment_updates_its_deals_payment_status_once(stack: Stack) -> None:
    stack.wait_ready()
    assert stack.prs_json("manage-background-tasks", "--action=test")["ok"] is True
    seeded = stack.prs_json("seed-demo")
    payments = seeded["payments"]
    assert len(payments) == 4  # two per organization, on deals 1 and 3

    with stack.http() as http:

        def finished(task_id: uuid.UUID) -> Any:
            answer = http.get(f"/api/background-tasks/{task_id}/status/")
            if answer.status_code != 200:
                return None
            body = answer.json()
            return body if body["status"] in {"SUCCEEDED", "FAILED", "DEAD_LETTERED"} else None

        states = {
            payment: wait_for(
                f"no payment-status task for {payment}",
                lambda payment=payment: finished(uuid.uuid5(PAYMENT_TASKS, payment)),
                stack,
                timeout=60,
            )
            for payment in payments
        }
    for payment, state in states.items():
        assert state["status"] == "SUCCEEDED", (payment, state)
        assert state["task_type"] == "deal.process_workflow"
        assert state["result"]["action"] == "update_payment_status"
        assert state["result"]["current"] in {"partially_paid", "overdue"}, state

    # The demo's acme deal 1: 12,000.00 of which 4,000.00 paid, not yet due.
    acme = next(p for p in payments if "acme" in p and p.endswith("-payment-1"))
    assert states[acme]["result"]["deal_id"].endswith("-deal-1"), states[acme]
    assert states[acme]["result"]["current"] == "partially_paid"
    assert states[acme]["result"]["paid_total"] == "4000.00"
    org = acme.rsplit("-payment-", 1)[0]
    salesperson = f"salesperson@{org}.example"

    def received() -> list[EmailMessage]:
        return [
            m
            for m in emails_to(stack.data_dir / "outbox", salesperson)
            if m["X-PRS-Notification-Type"] == "payment_received"
        ]

    emails = wait_for(f"no payment_received email to {salesperson}", received, stack)
    assert f"{org}-deal-1" in text_of(emails[0])

    # One task per payment and none other of its kind: nobody queued anything. (A task may take
    # two attempts: a payment handled before its deal is retried until the deal is replicated.)
    with stack.http() as http:
        listed = http.get(
            "/api/background-tasks/", params={"task_type": "deal.process_workflow", "limit": 100}
        )
    assert listed.status_code == 200, listed.text
    tasks = listed.json()["items"]
    assert sorted(t["task_id"] for t in tasks) == sorted(
        str(uuid.uuid5(PAYMENT_TASKS, p)) for p in payments
    )
