"""Taking a deal through the transition table: state, audit entry and announcing events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from deal_workflow.domain.states import DealState, Outcome, Transition, transition
from deal_workflow.models import Deal
from deal_workflow.service_layer.unit import Unit
from prs_shared.messaging.deals import WorkflowAction

EventBuilders = Mapping[str, Callable[[], BaseModel]]


async def apply(
    u: Unit,
    deal: Deal,
    action: WorkflowAction,
    outcome: Outcome,
    *,
    actor: str,
    reason: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    events: EventBuilders,
) -> Transition:
    """Apply the table's transition, write its audit entry and stage the events it names.

    ``events`` builds each payload the transition may announce; only those the table lists for
    this outcome are sent.
    """
    previous = DealState(deal.state)
    step = transition(previous, action, outcome)
    now = u.now()
    if step.to is not previous:
        deal.state = step.to.value
        deal.state_changed_at = now
    deal.updated_at = now
    await u.audit.record(
        actor=actor,
        action=f"deal.{action.value}",
        entity_type="deal",
        entity_id=deal.deal_id,
        organization_id=deal.organization_id,
        before={"state": previous.value, **before},
        after={"state": step.to.value, "outcome": outcome.value, **after},
        reason=reason,
    )
    for type_ in step.events:
        u.ctx.caused(type_, events[type_](), organization_id=deal.organization_id)
    return step


def outcome_fields(deal: Deal, by_user_id: str | None) -> dict[str, Any]:
    """The fields every deal outcome event starts with."""
    return {
        "deal_id": deal.deal_id,
        "organization_id": deal.organization_id,
        "client_name": deal.client_name,
        "value": deal.value,
        "currency": deal.currency,
        "salesperson_id": deal.salesperson_id,
        "by_user_id": by_user_id,
    }
