"""verify_deal: gather what the checks need from the replica, run them, take the transition."""

from __future__ import annotations

from typing import Any

from deal_workflow.domain.checks import (
    DealFacts,
    OrganizationFacts,
    PaymentFacts,
    RejectedFile,
    UserFacts,
    VerificationInput,
    verify,
)
from deal_workflow.domain.states import DealState, Outcome, ensure_allowed
from deal_workflow.models import Deal
from deal_workflow.service_layer.lifecycle import apply, outcome_fields
from deal_workflow.service_layer.unit import Unit
from prs_shared.messaging.deals import (
    DEAL_REJECTED,
    DEAL_VERIFIED,
    DealRejected,
    DealVerified,
    WorkflowAction,
)

ACTION = WorkflowAction.VERIFY_DEAL


def deal_facts(deal: Deal) -> DealFacts:
    return DealFacts(
        deal_id=deal.deal_id,
        organization_id=deal.organization_id,
        client_id=deal.client_id,
        client_name=deal.client_name,
        value=deal.value,
        currency=deal.currency,
        salesperson_id=deal.salesperson_id,
        due_date=deal.due_date,
        attachment_ids=tuple(deal.attachment_ids),
        created_at=deal.created_at,
    )


async def gather(u: Unit, deal: Deal) -> VerificationInput:
    org = await u.repo.organization(deal.organization_id)
    user = await u.repo.user(deal.salesperson_id) if deal.salesperson_id else None
    others = await u.repo.duplicate_candidates(deal, excluded_state=DealState.REJECTED.value)
    payments = await u.repo.payments_of(deal.deal_id)
    return VerificationInput(
        deal=deal_facts(deal),
        organization=OrganizationFacts(org.organization_id, org.currency) if org else None,
        salesperson=(
            UserFacts(user.user_id, user.organization_id, user.full_name, user.roles, user.active)
            if user
            else None
        ),
        other_deals=[deal_facts(o) for o in others],
        payments=[PaymentFacts(p.payment_id, p.amount, p.currency) for p in payments],
        scan_verdicts=await u.repo.scan_verdicts(deal.attachment_ids, deal.organization_id),
        rejected_files=[
            RejectedFile(r.original_filename or "(unnamed)", r.detail or "rejected")
            for r in await u.repo.rejected_files(deal)
        ],
    )


async def verify_deal(u: Unit, deal: Deal, *, actor: str, user_id: str | None) -> dict[str, Any]:
    ensure_allowed(DealState(deal.state), ACTION)
    verification = verify(await gather(u, deal))
    outcome = verification.outcome
    reasons = verification.reasons
    previous_reasons = list(deal.verification_reasons)
    deal.verification_reasons = reasons
    base = outcome_fields(deal, user_id)
    step = await apply(
        u,
        deal,
        ACTION,
        outcome,
        actor=actor,
        reason="automated verification: " + ("; ".join(reasons) or "all checks passed"),
        before={"reasons": previous_reasons},
        after={"checks_passed": verification.passed, "reasons": reasons},
        events={
            DEAL_VERIFIED.type: lambda: DealVerified(**base, checks=verification.passed),
            DEAL_REJECTED.type: lambda: DealRejected(
                **base, reasons=reasons, manual_review=outcome is Outcome.NEEDS_REVIEW
            ),
        },
    )
    return {
        "deal_id": deal.deal_id,
        "action": ACTION.value,
        "outcome": outcome.value,
        "state": step.to.value,
        "checks_passed": verification.passed,
        "reasons": reasons,
        "manual_review": outcome is Outcome.NEEDS_REVIEW,
    }
