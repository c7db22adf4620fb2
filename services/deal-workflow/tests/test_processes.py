"""Business processes over a fixed clock: reminders, overdue notices, commission reconciliation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import delete, select, update

from deal_workflow.adapters.audit_log import verify_audit_log
from deal_workflow.adapters.clock import FixedClock
from deal_workflow.models import AuditEntry, Commission, Deal
from deal_workflow.testing import (
    NOW,
    Harness,
    deal,
    flat_policy,
    organization,
    payment,
    tiered_policy,
    user,
    workflow,
)
from prs_shared.messaging import deals as dw
from prs_shared.messaging import prs_events as prs
from prs_shared.messaging.deals import WorkflowAction as A


async def test_reminders_go_once_per_organization_and_day(
    harness: Harness, clock: FixedClock
) -> None:
    await harness.given(
        (prs.ORGANIZATION_CREATED, organization()),
        (prs.ORGANIZATION_CREATED, organization("org-2")),
        (prs.USER_CREATED, user()),
        (prs.DEAL_CREATED, deal("old-1", created_at=NOW - timedelta(hours=30))),
        (prs.DEAL_CREATED, deal("old-2", client_id=None, created_at=NOW - timedelta(days=3))),
        (prs.DEAL_CREATED, deal("fresh", created_at=NOW - timedelta(hours=23))),
        (prs.DEAL_CREATED, deal("other-org", "org-2", created_at=NOW - timedelta(days=2))),
        (prs.DEAL_CREATED, deal("done", client_id="c-9", created_at=NOW - timedelta(days=5))),
    )
    # old-2 goes to manual review (no client id): still waiting for a person, still reminded.
    await harness.handle(dw.PROCESS_DEAL_WORKFLOW, workflow("old-2", A.VERIFY_DEAL))
    await harness.handle(dw.PROCESS_DEAL_WORKFLOW, workflow("done", A.VERIFY_DEAL))

    first = await harness.handle(dw.RUN_VERIFICATION_REMINDERS, dw.RunVerificationReminders())
    reminders = first.of(dw.VERIFICATION_REMINDER_DUE)
    assert [(r["organization_id"], r["deal_ids"], r["day"]) for r in reminders] == [
        ("org-1", ["old-1", "old-2"], "2026-11-16"),
        ("org-2", ["other-org"], "2026-11-16"),
    ]
    assert reminders[0]["oldest_pending_since"].startswith("2026-11-13T09:30")
    assert [e.organization_id for e in first.events] == ["org-1", "org-2"]

    clock.advance(timedelta(hours=10))  # later the same day
    second = await harness.handle(dw.RUN_VERIFICATION_REMINDERS, dw.RunVerificationReminders())
    assert second.events == []
    assert second.result is not None
    assert second.result["organizations_already_reminded_today"] == ["org-1", "org-2"]

    clock.advance(timedelta(days=1))  # the next day, 'fresh' is overdue for review too
    third = await harness.handle(
        dw.RUN_VERIFICATION_REMINDERS, dw.RunVerificationReminders(organization_id="org-1")
    )
    assert [
        (r["organization_id"], r["deal_ids"]) for r in third.of(dw.VERIFICATION_REMINDER_DUE)
    ] == [("org-1", ["fresh", "old-1", "old-2"])]


async def test_overdue_deals_are_announced_once_per_month(
    harness: Harness, clock: FixedClock
) -> None:
    due = date(2026, 11, 10)
    await harness.given(
        (prs.ORGANIZATION_CREATED, organization()),
        (prs.USER_CREATED, user()),
        (prs.DEAL_CREATED, deal("unpaid", due_date=due)),
        (prs.DEAL_CREATED, deal("partly", client_id="c-2", due_date=due)),
        (prs.DEAL_CREATED, deal("paid", client_id="c-3", due_date=due)),
        (prs.DEAL_CREATED, deal("not-yet", client_id="c-4", due_date=date(2026, 12, 1))),
        (prs.DEAL_CREATED, deal("rejected", salesperson_id=None, client_id="c-5", due_date=due)),
        (prs.PAYMENT_RECORDED, payment("p-1", "partly", "250.00")),
        (prs.PAYMENT_RECORDED, payment("p-2", "paid", "1000.00")),
    )
    await harness.handle(dw.PROCESS_DEAL_WORKFLOW, workflow("rejected", A.VERIFY_DEAL))

    run = await harness.handle(dw.DETECT_OVERDUE_DEALS, dw.DetectOverdueDeals())
    notices = run.of(dw.DEAL_OVERDUE)
    assert [(n["deal_id"], n["outstanding"], n["period"]) for n in notices] == [
        ("partly", "750.0000", "2026-11"),
        ("unpaid", "1000.0000", "2026-11"),
    ]
    # The status moved too, and that change is announced on its own.
    changes = run.of(dw.PAYMENT_STATUS_CHANGED)
    assert sorted((c["deal_id"], c["current"]) for c in changes) == [
        ("paid", "paid"),
        ("partly", "overdue"),
        ("unpaid", "overdue"),
    ]

    clock.advance(timedelta(days=3))
    again = await harness.handle(dw.DETECT_OVERDUE_DEALS, dw.DetectOverdueDeals())
    assert again.events == []
    assert again.result is not None
    assert again.result["already_announced"] == ["partly", "unpaid"]

    clock.set(datetime(2026, 12, 2, 8, 0, tzinfo=UTC))  # a new period; not-yet is late now
    december = await harness.handle(dw.DETECT_OVERDUE_DEALS, dw.DetectOverdueDeals())
    assert sorted(n["deal_id"] for n in december.of(dw.DEAL_OVERDUE)) == [
        "not-yet",
        "partly",
        "unpaid",
    ]
    assert {n["period"] for n in december.of(dw.DEAL_OVERDUE)} == {"2026-12"}


async def _verified_with_commissions(harness: Harness, *ids: str) -> None:
    await harness.given(
        (prs.ORGANIZATION_CREATED, organization(policy=flat_policy("0.10"))),
        (prs.USER_CREATED, user()),
        *((prs.DEAL_CREATED, deal(i, client_id=f"c-{i}")) for i in ids),
    )
    for i in ids:
        await harness.handle(dw.PROCESS_DEAL_WORKFLOW, workflow(i, A.VERIFY_DEAL))
        await harness.handle(dw.PROCESS_DEAL_WORKFLOW, workflow(i, A.CALCULATE_COMMISSION))


async def test_reconciliation_finds_and_fixes_planted_discrepancies(harness: Harness) -> None:
    await _verified_with_commissions(harness, "ok", "tampered", "missing", "repriced")
    await harness.given((prs.DEAL_CREATED, deal("pending", client_id="c-p")))  # not eligible
    async with harness.sessions() as session, session.begin():
        await session.execute(
            update(Commission).where(Commission.deal_id == "tampered").values(amount=Decimal("1"))
        )
        await session.execute(delete(Commission).where(Commission.deal_id == "missing"))
    # PRS changes a verified deal's value afterwards.
    await harness.given(
        (prs.DEAL_CHANGED, deal("repriced", client_id="c-repriced", value="2000.00", version=2))
    )

    run = await harness.handle(dw.RUN_COMMISSION_CALCULATION, dw.RunCommissionCalculation())
    assert run.result is not None
    assert {k: run.result[k] for k in ("deals_checked", "created", "fixed", "unchanged")} == {
        "deals_checked": 4,
        "created": 1,
        "fixed": 2,
        "unchanged": 1,
    }
    assert run.result["total_commission"] == "500.0000"  # 100 + 100 + 100 + 200
    (summary,) = run.of(dw.COMMISSIONS_RECONCILED)
    assert (summary["deals_checked"], summary["created"], summary["fixed"]) == (4, 1, 2)
    assert sorted(e["deal_id"] for e in run.of(dw.COMMISSION_CALCULATED)) == [
        "missing",
        "repriced",
        "tampered",
    ]
    async with harness.sessions() as session:
        amounts = dict((await session.execute(select(Commission.deal_id, Commission.amount))).all())
        fixes = (
            (
                await session.execute(
                    select(AuditEntry).where(AuditEntry.actor == "process:commission_calculation")
                )
            )
            .scalars()
            .all()
        )
        assert all(v.intact for v in await verify_audit_log(session))
    assert amounts == {
        "ok": Decimal("100"),
        "tampered": Decimal("100"),
        "missing": Decimal("100"),
        "repriced": Decimal("200"),
    }
    reasons = sorted(f.reason for f in fixes)
    assert len(reasons) == 3
    assert any(
        r.startswith("commission reconciliation: stored 1.0000, expected 100.00 USD")
        for r in reasons
    )

    # Nothing left to fix: a second run changes and announces nothing but its summary.
    second = await harness.handle(dw.RUN_COMMISSION_CALCULATION, dw.RunCommissionCalculation())
    assert second.result is not None
    assert (second.result["created"], second.result["fixed"]) == (
        0,
        0,
    )
    assert [e.type for e in second.events] == [dw.COMMISSIONS_RECONCILED.type]


async def test_a_policy_change_is_reconciled_for_every_verified_deal(harness: Harness) -> None:
    await _verified_with_commissions(harness, "a", "b")
    await harness.given(
        (
            prs.ORGANIZATION_CHANGED,
            organization(policy=tiered_policy(("500", "0.05"), (None, "0.20")), version=2),
        )
    )
    run = await harness.handle(
        dw.RUN_COMMISSION_CALCULATION, dw.RunCommissionCalculation(organization_id="org-1")
    )
    assert run.result is not None
    assert run.result["fixed"] == 2
    async with harness.sessions() as session:
        amounts = (await session.execute(select(Commission.amount))).scalars().all()
        states = (await session.execute(select(Deal.state))).scalars().all()
    assert amounts == [Decimal("125"), Decimal("125")]  # 500 * 5% + 500 * 20%
    assert set(states) == {"verified"}
