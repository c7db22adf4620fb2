"""The deal lifecycle as a transition table: ``(state, action, outcome) -> (new state, events)``.

An action first has to be allowed in the deal's state (:func:`ensure_allowed`); its work then
decides an :class:`Outcome` (verification passed, failed or needs a person; a commission or
payment status changed or not; an invoice issued), and the table says where that leads and which
events announce it. Nothing else in the service decides a state change.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from deal_workflow.domain.errors import ForbiddenTransition
from prs_shared.messaging.deals import (
    COMMISSION_CALCULATED,
    DEAL_REJECTED,
    DEAL_VERIFIED,
    INVOICE_GENERATED,
    PAYMENT_STATUS_CHANGED,
    WorkflowAction,
)


class DealState(enum.StrEnum):
    PENDING_VERIFICATION = "pending_verification"
    MANUAL_REVIEW = "manual_review"
    REJECTED = "rejected"
    VERIFIED = "verified"
    INVOICED = "invoiced"


class Outcome(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NEEDS_REVIEW = "needs_review"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    ISSUED = "issued"


@dataclass(frozen=True)
class Transition:
    to: DealState
    events: tuple[str, ...] = ()


S = DealState
A = WorkflowAction
O = Outcome  # noqa: E741 - a one-letter alias keeps the table readable

_VERIFIED = DEAL_VERIFIED.type
_REJECTED = DEAL_REJECTED.type
_COMMISSION = COMMISSION_CALCULATED.type
_PAYMENT = PAYMENT_STATUS_CHANGED.type
_INVOICE = INVOICE_GENERATED.type


def _payment_tracking(state: DealState) -> dict[tuple[DealState, A, O], Transition]:
    return {
        (state, A.UPDATE_PAYMENT_STATUS, O.CHANGED): Transition(state, (_PAYMENT,)),
        (state, A.UPDATE_PAYMENT_STATUS, O.UNCHANGED): Transition(state),
    }


def _commissioning(state: DealState) -> dict[tuple[DealState, A, O], Transition]:
    return {
        (state, A.CALCULATE_COMMISSION, O.CHANGED): Transition(state, (_COMMISSION,)),
        (state, A.CALCULATE_COMMISSION, O.UNCHANGED): Transition(state),
    }


TRANSITIONS: Mapping[tuple[DealState, WorkflowAction, Outcome], Transition] = {
    # Waiting for its first verification.
    (S.PENDING_VERIFICATION, A.VERIFY_DEAL, O.PASSED): Transition(S.VERIFIED, (_VERIFIED,)),
    (S.PENDING_VERIFICATION, A.VERIFY_DEAL, O.FAILED): Transition(S.REJECTED, (_REJECTED,)),
    (S.PENDING_VERIFICATION, A.VERIFY_DEAL, O.NEEDS_REVIEW): Transition(
        S.MANUAL_REVIEW, (_REJECTED,)
    ),
    **_payment_tracking(S.PENDING_VERIFICATION),
    # A person has to look; checks may be re-run once verdicts or data arrive. Still needing
    # review is no news, so it announces nothing again.
    (S.MANUAL_REVIEW, A.VERIFY_DEAL, O.PASSED): Transition(S.VERIFIED, (_VERIFIED,)),
    (S.MANUAL_REVIEW, A.VERIFY_DEAL, O.FAILED): Transition(S.REJECTED, (_REJECTED,)),
    (S.MANUAL_REVIEW, A.VERIFY_DEAL, O.NEEDS_REVIEW): Transition(S.MANUAL_REVIEW),
    **_payment_tracking(S.MANUAL_REVIEW),
    # Rejected deals may be verified again after PRS corrected them (replicas can also lag:
    # the salesperson's user.created may arrive after the deal). A rejected deal is no
    # receivable, so its payment status is not tracked.
    (S.REJECTED, A.VERIFY_DEAL, O.PASSED): Transition(S.VERIFIED, (_VERIFIED,)),
    (S.REJECTED, A.VERIFY_DEAL, O.FAILED): Transition(S.REJECTED),
    (S.REJECTED, A.VERIFY_DEAL, O.NEEDS_REVIEW): Transition(S.MANUAL_REVIEW, (_REJECTED,)),
    # Verified: commission, payments and one invoice.
    **_commissioning(S.VERIFIED),
    **_payment_tracking(S.VERIFIED),
    (S.VERIFIED, A.GENERATE_INVOICE, O.ISSUED): Transition(S.INVOICED, (_INVOICE,)),
    # Invoiced: an invoice number is issued once per deal.
    **_commissioning(S.INVOICED),
    **_payment_tracking(S.INVOICED),
}


def allowed_actions(state: DealState) -> list[WorkflowAction]:
    """Actions the table accepts in ``state``, in declaration order of the enum."""
    present = {action for (s, action, _) in TRANSITIONS if s == state}
    return [action for action in WorkflowAction if action in present]


def states_allowing(action: WorkflowAction) -> list[DealState]:
    """States in which ``action`` may run; the business processes select deals by this."""
    present = {s for (s, a, _) in TRANSITIONS if a == action}
    return [state for state in DealState if state in present]


def ensure_allowed(state: DealState, action: WorkflowAction) -> None:
    """Raise :class:`ForbiddenTransition` (permanent) unless ``action`` may run in ``state``."""
    allowed = allowed_actions(state)
    if action not in allowed:
        raise ForbiddenTransition(state.value, action.value, [a.value for a in allowed])


def transition(state: DealState, action: WorkflowAction, outcome: Outcome) -> Transition:
    """Where ``outcome`` of ``action`` leads from ``state``; forbidden pairs raise."""
    ensure_allowed(state, action)
    found = TRANSITIONS.get((state, action, outcome))
    if found is None:
        # The action is allowed here but cannot end this way: a programming error, not input.
        raise ValueError(f"{action.value} cannot end with {outcome.value} in {state.value}")
    return found
