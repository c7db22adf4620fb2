"""Business processes the scheduler ticks: reminders, commission reconciliation, overdue deals."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from deal_workflow.dependencies import Dependencies
from deal_workflow.domain.deadlines import REMINDER_AFTER, pending_too_long, period_of
from deal_workflow.domain.errors import DomainError
from deal_workflow.domain.money import round_money
from deal_workflow.domain.payments import outstanding
from deal_workflow.domain.states import DealState, states_allowing
from deal_workflow.models import Deal
from deal_workflow.service_layer.commissions import Change, calculate_commission
from deal_workflow.service_layer.lifecycle import outcome_fields
from deal_workflow.service_layer.payment_status import sync_payment_status
from deal_workflow.service_layer.unit import Unit
from prs_shared.messaging.deals import (
    COMMISSIONS_RECONCILED,
    DEAL_OVERDUE,
    VERIFICATION_REMINDER_DUE,
    CommissionReconciled,
    DealOverdue,
    DetectOverdueDeals,
    PaymentStatus,
    RunCommissionCalculation,
    RunVerificationReminders,
    VerificationReminderDue,
    WorkflowAction,
)
from prs_shared.messaging.handlers import HandlerContext

AWAITING_VERIFICATION = (DealState.PENDING_VERIFICATION.value, DealState.MANUAL_REVIEW.value)
"""Deals a person still has to verify: not yet checked, or sent to manual review."""


async def run_verification_reminders(
    command: RunVerificationReminders, ctx: HandlerContext, deps: Dependencies
) -> dict[str, Any]:
    """One ``deal.verification_reminder_due`` per organization and day, however often it runs."""
    u = Unit.of(ctx, deps)
    scope = u.scope(command.organization_id)
    now = u.now()
    day = now.date()
    waiting = await u.repo.deals(states=AWAITING_VERIFICATION, organization_id=scope)
    by_org: dict[str, list[Deal]] = defaultdict(list)
    for deal in waiting:
        if pending_too_long(deal.created_at, now):
            by_org[deal.organization_id].append(deal)
    reminded: list[str] = []
    already: list[str] = []
    for org, deals in sorted(by_org.items()):
        ids = [d.deal_id for d in deals]
        if not await u.repo.claim_reminder(org, day, ids, now):
            already.append(org)
            continue
        reminded.append(org)
        ctx.caused(
            VERIFICATION_REMINDER_DUE.type,
            VerificationReminderDue(
                organization_id=org,
                deal_ids=ids,
                oldest_pending_since=min(d.created_at for d in deals),
                day=day,
            ),
            organization_id=org,
        )
    return {
        "day": day.isoformat(),
        "threshold_hours": REMINDER_AFTER.total_seconds() / 3600,
        "deals_pending": sum(len(d) for d in by_org.values()),
        "organizations_reminded": reminded,
        "organizations_already_reminded_today": already,
    }


async def run_commission_calculation(
    command: RunCommissionCalculation, ctx: HandlerContext, deps: Dependencies
) -> dict[str, Any]:
    """Recompute every eligible deal's commission, fix what differs, report what it did."""
    u = Unit.of(ctx, deps)
    scope = u.scope(command.organization_id)
    deals = await u.repo.deals(
        states=[s.value for s in states_allowing(WorkflowAction.CALCULATE_COMMISSION)],
        organization_id=scope,
        lock=True,
    )
    counts = {Change.CREATED: 0, Change.UPDATED: 0, Change.UNCHANGED: 0}
    totals: dict[str, Decimal] = defaultdict(Decimal)
    skipped: list[dict[str, str]] = []
    for deal in deals:
        try:
            result = await calculate_commission(
                u,
                deal,
                actor="process:commission_calculation",
                user_id=None,
                why="commission reconciliation",
                record_unchanged=False,
            )
        except DomainError as exc:
            # One deal the policy cannot apply to must not stop the run; it is reported.
            skipped.append({"deal_id": deal.deal_id, "reason": str(exc)})
            continue
        counts[result.change] += 1
        totals[deal.currency] += result.commission.amount
    total = sum(totals.values(), Decimal(0))
    summary = CommissionReconciled(
        organization_id=scope,
        deals_checked=len(deals),
        created=counts[Change.CREATED],
        fixed=counts[Change.UPDATED],
        total_commission=total,
    )
    ctx.caused(COMMISSIONS_RECONCILED.type, summary, organization_id=scope)
    return {
        "organization_id": scope,
        "deals_checked": summary.deals_checked,
        "created": summary.created,
        "fixed": summary.fixed,
        "unchanged": counts[Change.UNCHANGED],
        "skipped": skipped,
        "total_commission": f"{total:f}",
        "total_commission_by_currency": {
            c: f"{round_money(v, c):f}" for c, v in sorted(totals.items())
        },
    }


async def run_overdue_detection(
    command: DetectOverdueDeals, ctx: HandlerContext, deps: Dependencies
) -> dict[str, Any]:
    """Deals past due and not fully paid: status brought up to date, one notice per month."""
    u = Unit.of(ctx, deps)
    scope = u.scope(command.organization_id)
    now = u.now()
    today = now.date()
    period = period_of(today)
    deals = await u.repo.deals(
        states=[s.value for s in states_allowing(WorkflowAction.UPDATE_PAYMENT_STATUS)],
        organization_id=scope,
        due_before=today,
        lock=True,
    )
    announced: list[str] = []
    already: list[str] = []
    for deal in deals:
        status = await sync_payment_status(
            u,
            deal,
            actor="process:overdue_detection",
            user_id=None,
            why="overdue detection",
            record_unchanged=False,
        )
        if status.current is not PaymentStatus.OVERDUE:
            continue
        owed = outstanding(deal.value, status.paid_total)
        if not await u.repo.claim_overdue_notice(deal.deal_id, period, owed, now):
            already.append(deal.deal_id)
            continue
        announced.append(deal.deal_id)
        assert deal.due_date is not None
        ctx.caused(
            DEAL_OVERDUE.type,
            DealOverdue(
                **outcome_fields(deal, None),
                due_date=deal.due_date,
                outstanding=owed,
                period=period,
            ),
            organization_id=deal.organization_id,
        )
    return {
        "period": period,
        "deals_past_due": len(deals),
        "announced": announced,
        "already_announced": already,
    }
