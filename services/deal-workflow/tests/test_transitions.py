"""The deal lifecycle table, checked pair by pair against the intended behaviour."""

from __future__ import annotations

import itertools

import pytest

from deal_workflow.domain.errors import ForbiddenTransition
from deal_workflow.domain.states import (
    TRANSITIONS,
    DealState,
    Outcome,
    Transition,
    allowed_actions,
    ensure_allowed,
    states_allowing,
    transition,
)
from prs_shared.messaging.deals import WorkflowAction as A
from prs_shared.messaging.errors import PermanentError

S = DealState

VERIFIED = "deal.verified"
REJECTED = "deal.rejected"
COMMISSION = "deal.commission_calculated"
PAYMENT = "deal.payment_status_changed"
INVOICE = "deal.invoice_generated"


def _payments(state: DealState) -> dict[tuple[DealState, A, Outcome], Transition]:
    return {
        (state, A.UPDATE_PAYMENT_STATUS, Outcome.CHANGED): Transition(state, (PAYMENT,)),
        (state, A.UPDATE_PAYMENT_STATUS, Outcome.UNCHANGED): Transition(state, ()),
    }


def _commission(state: DealState) -> dict[tuple[DealState, A, Outcome], Transition]:
    return {
        (state, A.CALCULATE_COMMISSION, Outcome.CHANGED): Transition(state, (COMMISSION,)),
        (state, A.CALCULATE_COMMISSION, Outcome.UNCHANGED): Transition(state, ()),
    }


# Written out independently of the implementation: what each allowed step must do.
EXPECTED: dict[tuple[DealState, A, Outcome], Transition] = {
    (S.PENDING_VERIFICATION, A.VERIFY_DEAL, Outcome.PASSED): Transition(S.VERIFIED, (VERIFIED,)),
    (S.PENDING_VERIFICATION, A.VERIFY_DEAL, Outcome.FAILED): Transition(S.REJECTED, (REJECTED,)),
    (S.PENDING_VERIFICATION, A.VERIFY_DEAL, Outcome.NEEDS_REVIEW): Transition(
        S.MANUAL_REVIEW, (REJECTED,)
    ),
    **_payments(S.PENDING_VERIFICATION),
    (S.MANUAL_REVIEW, A.VERIFY_DEAL, Outcome.PASSED): Transition(S.VERIFIED, (VERIFIED,)),
    (S.MANUAL_REVIEW, A.VERIFY_DEAL, Outcome.FAILED): Transition(S.REJECTED, (REJECTED,)),
    (S.MANUAL_REVIEW, A.VERIFY_DEAL, Outcome.NEEDS_REVIEW): Transition(S.MANUAL_REVIEW, ()),
    **_payments(S.MANUAL_REVIEW),
    (S.REJECTED, A.VERIFY_DEAL, Outcome.PASSED): Transition(S.VERIFIED, (VERIFIED,)),
    (S.REJECTED, A.VERIFY_DEAL, Outcome.FAILED): Transition(S.REJECTED, ()),
    (S.REJECTED, A.VERIFY_DEAL, Outcome.NEEDS_REVIEW): Transition(S.MANUAL_REVIEW, (REJECTED,)),
    **_commission(S.VERIFIED),
    **_payments(S.VERIFIED),
    (S.VERIFIED, A.GENERATE_INVOICE, Outcome.ISSUED): Transition(S.INVOICED, (INVOICE,)),
    **_commission(S.INVOICED),
    **_payments(S.INVOICED),
}

ALLOWED_PAIRS = sorted({(s, a) for (s, a, _) in EXPECTED})
FORBIDDEN_PAIRS = sorted(set(itertools.product(DealState, A)) - set(ALLOWED_PAIRS))


def _id(value: object) -> str:
    return str(getattr(value, "value", value))


def test_the_table_holds_exactly_the_intended_transitions() -> None:
    assert dict(TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(("state", "action", "outcome"), sorted(EXPECTED), ids=lambda v: _id(v))
def test_every_allowed_step_leads_to_its_state_with_its_events(
    state: DealState, action: A, outcome: Outcome
) -> None:
    step = transition(state, action, outcome)
    assert step == EXPECTED[(state, action, outcome)]
    ensure_allowed(state, action)  # no error


@pytest.mark.parametrize(("state", "action"), FORBIDDEN_PAIRS, ids=lambda v: _id(v))
def test_every_forbidden_pair_is_a_permanent_error_naming_state_and_action(
    state: DealState, action: A
) -> None:
    with pytest.raises(ForbiddenTransition) as raised:
        ensure_allowed(state, action)
    assert isinstance(raised.value, PermanentError)
    assert f"'{state.value}'" in str(raised.value)
    assert f"'{action.value}'" in str(raised.value)
    for outcome in Outcome:
        with pytest.raises(ForbiddenTransition):
            transition(state, action, outcome)


def test_there_are_forbidden_pairs_in_every_state() -> None:
    # Each state refuses something: no state is a free-for-all.
    assert {s for s, _ in FORBIDDEN_PAIRS} == set(DealState)


@pytest.mark.parametrize(("state", "action"), ALLOWED_PAIRS, ids=lambda v: _id(v))
def test_an_allowed_action_cannot_end_with_an_outcome_it_does_not_have(
    state: DealState, action: A
) -> None:
    outcomes = {o for (s, a, o) in EXPECTED if (s, a) == (state, action)}
    for outcome in set(Outcome) - outcomes:
        with pytest.raises(ValueError, match="cannot end with"):
            transition(state, action, outcome)


def test_allowed_actions_and_states_allowing_are_read_from_the_table() -> None:
    assert allowed_actions(S.VERIFIED) == [
        A.CALCULATE_COMMISSION,
        A.UPDATE_PAYMENT_STATUS,
        A.GENERATE_INVOICE,
    ]
    assert allowed_actions(S.REJECTED) == [A.VERIFY_DEAL]
    assert states_allowing(A.CALCULATE_COMMISSION) == [S.VERIFIED, S.INVOICED]
    assert states_allowing(A.UPDATE_PAYMENT_STATUS) == [
        S.PENDING_VERIFICATION,
        S.MANUAL_REVIEW,
        S.VERIFIED,
        S.INVOICED,
    ]
