"""``deal.process_workflow``: one workflow action on one deal."""

from __future__ import annotations

from typing import Any

from deal_workflow.dependencies import Dependencies
from deal_workflow.service_layer.commissions import calculate_commission
from deal_workflow.service_layer.invoicing import generate_invoice
from deal_workflow.service_layer.payment_status import sync_payment_status
from deal_workflow.service_layer.unit import Unit, user_actor
from deal_workflow.service_layer.verification import verify_deal
from prs_shared.messaging.deals import ProcessDealWorkflow, WorkflowAction
from prs_shared.messaging.handlers import HandlerContext


async def process_deal_workflow(
    command: ProcessDealWorkflow, ctx: HandlerContext, deps: Dependencies
) -> dict[str, Any]:
    u = Unit.of(ctx, deps)
    deal = await u.locked_deal(command.deal_id)
    actor = user_actor(command.user_id)
    requested = f"{command.workflow_action.value} requested"
    match command.workflow_action:
        case WorkflowAction.VERIFY_DEAL:
            return await verify_deal(u, deal, actor=actor, user_id=command.user_id)
        case WorkflowAction.CALCULATE_COMMISSION:
            commission = await calculate_commission(
                u, deal, actor=actor, user_id=command.user_id, why=requested, record_unchanged=True
            )
            return {"action": command.workflow_action.value, **commission.as_dict()}
        case WorkflowAction.UPDATE_PAYMENT_STATUS:
            status = await sync_payment_status(
                u, deal, actor=actor, user_id=command.user_id, why=requested, record_unchanged=True
            )
            return {"action": command.workflow_action.value, **status.as_dict()}
        case WorkflowAction.GENERATE_INVOICE:
            return await generate_invoice(u, deal, actor=actor, user_id=command.user_id)
