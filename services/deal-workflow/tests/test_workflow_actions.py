"""Workflow actions on deals, through the service's registry, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from deal_workflow.adapters.audit_log import verify_audit_log
from deal_workflow.adapters.clock import FixedClock
from deal_workflow.models import AuditEntry, Commission, Deal, Invoice
from deal_workflow.testing import (
    Harness,
    deal,
    organization,
    payment,
    tiered_policy,
    user,
    workflow,
)
from prs_shared.messaging import deals as dw
from prs_shared.messaging import prs_events as prs
from prs_shared.messaging.deals import WorkflowAction as A
from prs_shared.messaging.errors import PermanentError, TransientError
from prs_shared.messaging.files import FILE_PROCESSED, FileProcessed
from prs_shared.storage import LocalFileStore

CMD = dw.PROCESS_DEAL_WORKFLOW


async def _world(
    harness: Harness, *deals: prs.Deal, policy: prs.CommissionPolicy | None = None
) -> None:
    await harness.given(
        (prs.ORGANIZATION_CREATED, organization(policy=policy)),
        (prs.USER_CREATED, user()),
        *((prs.DEAL_CREATED, d) for d in deals),
    )


async def _state(harness: Harness, deal_id: str = "deal-1") -> str:
    async with harness.sessions() as session:
        row = await session.get(Deal, deal_id)
        assert row is not None
        return row.state


async def test_a_sound_deal_is_verified_announced_and_audited(harness: Harness) -> None:
    await _world(harness, deal())
    done = await harness.handle(CMD, workflow("deal-1", A.VERIFY_DEAL))
    assert done.result is not None
    assert (done.result["outcome"], done.result["state"]) == ("passed", "verified")
    (event,) = done.of(dw.DEAL_VERIFIED)
    assert event["deal_id"] == "deal-1"
    assert event["by_user_id"] == "admin-1"
    assert "known_salesperson" in event["checks"]
    assert done.events[0].organization_id == "org-1"
    async with harness.sessions() as session:
        entry = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "deal.verify_deal"))
        ).scalar_one()
        assert all(v.intact for v in await verify_audit_log(session))
    assert entry.actor == "user:admin-1"
    assert entry.before["state"] == "pending_verification"
    assert entry.after["state"] == "verified"


async def test_a_rejected_deal_names_its_reasons_and_passes_once_the_data_arrives(
    harness: Harness,
) -> None:
    await harness.given(
        (prs.ORGANIZATION_CREATED, organization()),
        (prs.DEAL_CREATED, deal(salesperson_id="late-user")),
    )
    rejected = await harness.handle(CMD, workflow("deal-1", A.VERIFY_DEAL))
    (event,) = rejected.of(dw.DEAL_REJECTED)
    assert event["reasons"] == ["salesperson late-user is not known"]
    assert event["manual_review"] is False
    assert await _state(harness) == "rejected"
    await harness.given((prs.USER_CREATED, user("late-user")))
    verified = await harness.handle(CMD, workflow("deal-1", A.VERIFY_DEAL))
    assert verified.of(dw.DEAL_VERIFIED)
    assert await _state(harness) == "verified"


async def test_an_attachment_without_verdict_sends_the_deal_to_manual_review(
    harness: Harness,
) -> None:
    await _world(harness, deal(attachment_ids=["f-1"]))
    first = await harness.handle(CMD, workflow("deal-1", A.VERIFY_DEAL))
    (event,) = first.of(dw.DEAL_REJECTED)
    assert event["manual_review"] is True
    assert event["reasons"] == ["attachment f-1 has no scan verdict yet"]
    # Still waiting: checked again, nothing new to announce.
    again = await harness.handle(CMD, workflow("deal-1", A.VERIFY_DEAL))
    assert again.events == []
    assert await _state(harness) == "manual_review"
    await harness.given(
        (
            FILE_PROCESSED,
            FileProcessed(
                file_id="f-1",
                file_type="deal_attachment",
                variants={},
                deal_id="deal-1",
                scan="clean",
            ),
        )
    )
    verified = await harness.handle(CMD, workflow("deal-1", A.VERIFY_DEAL))
    assert verified.of(dw.DEAL_VERIFIED)
    assert await _state(harness) == "verified"


async def test_recalculating_a_commission_never_creates_a_second_one(harness: Harness) -> None:
    policy = tiered_policy(("1000", "0.05"), (None, "0.10"))
    await _world(harness, deal(value="1500.55"), policy=policy)
    await harness.handle(CMD, workflow("deal-1", A.VERIFY_DEAL))
    first = await harness.handle(CMD, workflow("deal-1", A.CALCULATE_COMMISSION))
    second = await harness.handle(CMD, workflow("deal-1", A.CALCULATE_COMMISSION))
    assert first.result is not None
    assert second.result is not None
    # 1000 * 5% + 500.55 * 10% = 100.055 → 100.06 (half to even: 6 is even)
    assert first.result["amount"] == "100.06"
    assert first.result["change"] == "created"
    assert second.result["change"] == "unchanged"
    assert second.result["commission_id"] == first.result["commission_id"]
    (event,) = first.of(dw.COMMISSION_CALCULATED)
    assert Decimal(event["amount"]) == Decimal("100.06")
    assert second.events == []
    async with harness.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Commission)) == 1


@pytest.mark.parametrize(
    ("action", "state_text"),
    [
        (A.CALCULATE_COMMISSION, "pending_verification"),
        (A.GENERATE_INVOICE, "pending_verification"),
    ],
)
async def test_an_action_the_state_forbids_fails_permanently_and_changes_nothing(
    harness: Harness, action: A, state_text: str
) -> None:
    await _world(harness, deal())
    with pytest.raises(PermanentError) as raised:
        await harness.handle(CMD, workflow("deal-1", action))
    assert f"'{action.value}'" in str(raised.value)
    assert f"'{state_text}'" in str(raised.value)
    assert await _state(harness) == state_text


async def test_work_on_an_unknown_deal_is_retried(harness: Harness) -> None:
    with pytest.raises(TransientError, match="deal nope is not known"):
        await harness.handle(CMD, workflow("nope", A.VERIFY_DEAL))


async def test_payment_status_moves_from_unpaid_to_overpaid_and_to_overdue(
    harness: Harness, clock: FixedClock
) -> None:
    await _world(harness, deal(value="1000.00"), deal("deal-2"))

    async def update(deal_id: str = "deal-1") -> dict:
        done = await harness.handle(CMD, workflow(deal_id, A.UPDATE_PAYMENT_STATUS))
        assert done.result is not None
        events = done.of(dw.PAYMENT_STATUS_CHANGED)
        return {**done.result, "announced": [(e["previous"], e["current"]) for e in events]}

    assert (await update())["announced"] == []
    await harness.given((prs.PAYMENT_RECORDED, payment("p-1", amount="400.00")))
    assert (await update())["announced"] == [("unpaid", "partially_paid")]
    await harness.given((prs.PAYMENT_RECORDED, payment("p-2", amount="100.00")))
    more = await update()
    assert more["announced"] == []
    assert more["paid_total"] == "500.00"
    await harness.given((prs.PAYMENT_RECORDED, payment("p-3", amount="500.00")))
    assert (await update())["announced"] == [("partially_paid", "paid")]
    await harness.given((prs.PAYMENT_RECORDED, payment("p-4", amount="0.01")))
    assert (await update())["announced"] == [("paid", "overpaid")]
    clock.advance(timedelta(days=60))  # past deal-2's due date, nothing paid
    assert (await update("deal-2"))["announced"] == [("unpaid", "overdue")]


async def test_an_invoice_is_a_numbered_pdf_in_the_file_store(
    harness: Harness, file_store: LocalFileStore
) -> None:
    await _world(harness, deal(), deal("deal-2", client_id="client-2"))
    await harness.given(
        (prs.ORGANIZATION_CREATED, organization("org-2")),
        (prs.USER_CREATED, user("sp-2", "org-2")),
        (prs.DEAL_CREATED, deal("deal-3", "org-2", salesperson_id="sp-2")),
        (prs.PAYMENT_RECORDED, payment("p-1", amount="250.00")),
    )
    numbers = []
    for deal_id in ("deal-1", "deal-2", "deal-3"):
        await harness.handle(CMD, workflow(deal_id, A.VERIFY_DEAL))
        done = await harness.handle(CMD, workflow(deal_id, A.GENERATE_INVOICE))
        assert done.result is not None
        (event,) = done.of(dw.INVOICE_GENERATED)
        assert event["file_key"] == done.result["file_key"]
        numbers.append((done.result["invoice_number"], done.result["file_key"]))
    assert numbers == [
        ("INV-2026-000001", "invoices/org-1/2026/INV-2026-000001.pdf"),
        ("INV-2026-000002", "invoices/org-1/2026/INV-2026-000002.pdf"),
        ("INV-2026-000001", "invoices/org-2/2026/INV-2026-000001.pdf"),
    ]
    pdf = file_store.get(numbers[0][1])
    assert pdf.startswith(b"%PDF")
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "INV-2026-000001" in text
    assert "Globex Corporation" in text
    assert "Balance due 750.00 USD" in text
    with pytest.raises(PermanentError, match=r"'generate_invoice'.*'invoiced'"):
        await harness.handle(CMD, workflow("deal-1", A.GENERATE_INVOICE))
    async with harness.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Invoice)) == 3
