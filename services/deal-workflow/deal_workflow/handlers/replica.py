"""PRS domain events and file verdicts → the service's replica.

Snapshots carry a ``version``; one not newer than the stored row is ignored, so late or
redelivered events cannot roll the replica back. Each applied change is audited (the money and
permission changes among them are what the audit report looks for).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from deal_workflow.dependencies import Dependencies
from deal_workflow.domain.money import as_stored
from deal_workflow.domain.states import DealState, allowed_actions
from deal_workflow.models import AttachmentVerdict, Deal, Organization, Payment, User
from deal_workflow.service_layer.unit import Unit
from prs_shared.messaging import prs_events as prs
from prs_shared.messaging.deals import (
    PROCESS_DEAL_WORKFLOW,
    PaymentStatus,
    ProcessDealWorkflow,
    WorkflowAction,
)
from prs_shared.messaging.files import FileProcessed, FileRejected
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.tenancy import may_act_on

ATTACHMENT = "deal_attachment"


def as_utc(moment: datetime) -> datetime:
    """PRS times without a zone are taken as UTC, the platform's only zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _stale(kind: str, entity_id: str, incoming: int, stored: int) -> dict[str, Any]:
    return {
        "applied": False,
        "entity": kind,
        "id": entity_id,
        "reason": f"version {incoming} is not newer than stored version {stored}",
    }


def _applied(kind: str, entity_id: str, version: int | None = None) -> dict[str, Any]:
    return {"applied": True, "entity": kind, "id": entity_id, "version": version}


async def _audit(
    u: Unit, kind: str, entity_id: str, org: str | None, before: Any, after: Any, why: str
) -> None:
    await u.audit.record(
        actor="prs",
        action=u.ctx.envelope.type,
        entity_type=kind,
        entity_id=entity_id,
        organization_id=org,
        before=before,
        after=after,
        reason=why,
    )


def _org_snapshot(row: Organization) -> dict[str, Any]:
    return {
        "name": row.name,
        "currency": row.currency,
        "commission_policy": row.commission_policy,
        "version": row.version,
    }


async def on_organization(
    event: prs.Organization, ctx: HandlerContext, deps: Dependencies
) -> dict[str, Any]:
    u = Unit.of(ctx, deps)
    row = await u.repo.organization(event.organization_id, lock=True)
    if row is not None and event.version <= row.version:
        return _stale("organization", event.organization_id, event.version, row.version)
    before = None if row is None else _org_snapshot(row)
    if row is None:
        row = Organization(organization_id=event.organization_id)
        u.repo.add(row)
    row.name = event.name
    row.currency = event.currency
    row.commission_policy = event.commission_policy.model_dump(mode="json")
    row.version = event.version
    row.updated_at = u.now()
    await u.repo.flush()
    await _audit(
        u,
        "organization",
        row.organization_id,
        row.organization_id,
        before,
        _org_snapshot(row),
        f"PRS snapshot version {event.version}",
    )
    return _applied("organization", row.organization_id, row.version)


def _user_snapshot(row: User) -> dict[str, Any]:
    return {
        "organization_id": row.organization_id,
        "full_name": row.full_name,
        "roles": sorted(row.roles),
        "active": row.active,
        "version": row.version,
    }


async def on_user(event: prs.User, ctx: HandlerContext, deps: Dependencies) -> dict[str, Any]:
    u = Unit.of(ctx, deps)
    row = await u.repo.user(event.user_id, lock=True)
    if row is not None and event.version <= row.version:
        return _stale("user", event.user_id, event.version, row.version)
    before = None if row is None else _user_snapshot(row)
    if row is None:
        row = User(user_id=event.user_id)
        u.repo.add(row)
    row.organization_id = event.organization_id
    row.email = str(event.email)
    row.full_name = event.full_name
    row.roles = sorted(r.value for r in event.roles)
    row.active = event.active
    row.version = event.version
    row.updated_at = u.now()
    await u.repo.flush()
    await _audit(
        u,
        "user",
        row.user_id,
        row.organization_id,
        before,
        _user_snapshot(row),
        f"PRS snapshot version {event.version}",
    )
    return _applied("user", row.user_id, row.version)


REPLICATED_DEAL_FIELDS = (
    "organization_id",
    "client_id",
    "client_name",
    "value",
    "currency",
    "salesperson_id",
    "due_date",
    "attachment_ids",
    "created_at",
    "version",
)


def _deal_snapshot(row: Deal) -> dict[str, Any]:
    snapshot = {name: getattr(row, name) for name in REPLICATED_DEAL_FIELDS}
    snapshot["value"] = as_stored(row.value)
    return snapshot


async def on_deal(event: prs.Deal, ctx: HandlerContext, deps: Dependencies) -> dict[str, Any]:
    """Replicated fields follow PRS; the workflow state here is left as it is.

    A verified deal whose value changes keeps its state; the commission reconciliation puts its
    commission right.
    """
    u = Unit.of(ctx, deps)
    row = await u.repo.deal(event.deal_id, lock=True)
    if row is not None and event.version <= row.version:
        return _stale("deal", event.deal_id, event.version, row.version)
    now = u.now()
    before = None if row is None else _deal_snapshot(row)
    if row is None:
        row = Deal(
            deal_id=event.deal_id,
            state=DealState.PENDING_VERIFICATION.value,
            payment_status=PaymentStatus.UNPAID.value,
            paid_total=Decimal(0),
            verification_reasons=[],
            state_changed_at=now,
        )
        u.repo.add(row)
    row.organization_id = event.organization_id
    row.client_id = event.client_id
    row.client_name = event.client_name
    row.value = event.value
    row.currency = event.currency
    row.salesperson_id = event.salesperson_id
    row.due_date = event.due_date
    row.attachment_ids = list(event.attachment_ids)
    row.created_at = as_utc(event.created_at)
    row.version = event.version
    row.updated_at = now
    await u.repo.flush()
    after = _deal_snapshot(row)
    if before is not None:
        changed = sorted(k for k in after if after[k] != before[k] and k != "version")
        before = {k: before[k] for k in changed}
        after = {k: after[k] for k in changed}
    await _audit(
        u,
        "deal",
        row.deal_id,
        row.organization_id,
        before,
        after,
        f"PRS snapshot version {event.version}",
    )
    return _applied("deal", row.deal_id, row.version)


PAYMENT_TASKS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:prs:deal-workflow:payment-status")
"""Task and message ids of the payment-status update a payment causes derive from the payment."""


async def on_payment(event: prs.Payment, ctx: HandlerContext, deps: Dependencies) -> dict[str, Any]:
    """Payments are facts: recorded once by id, never changed.

    A new payment queues ``update_payment_status`` for its deal, through the outbox in this
    transaction: the deal's payment status (and so ``payment_received``) follows the payment
    without anyone asking. Once per payment: a redelivered event meets the inbox, the same
    payment again is ``known`` here, and the command's ids derive from the payment id.
    """
    u = Unit.of(ctx, deps)
    if await u.repo.payment(event.payment_id) is not None:
        return {"applied": False, "entity": "payment", "id": event.payment_id, "reason": "known"}
    u.repo.add(
        Payment(
            payment_id=event.payment_id,
            deal_id=event.deal_id,
            organization_id=event.organization_id,
            amount=event.amount,
            currency=event.currency,
            received_at=as_utc(event.received_at),
            method=event.method,
            recorded_at=u.now(),
        )
    )
    await u.repo.flush()
    await _audit(
        u,
        "payment",
        event.payment_id,
        event.organization_id,
        None,
        {
            "deal_id": event.deal_id,
            "amount": as_stored(event.amount),
            "currency": event.currency,
            "received_at": event.received_at,
            "method": event.method,
        },
        f"payment recorded in PRS for deal {event.deal_id}",
    )
    return {**_applied("payment", event.payment_id), **await _follow_payment(u, ctx, event)}


async def _follow_payment(u: Unit, ctx: HandlerContext, event: prs.Payment) -> dict[str, Any]:
    """Queue the deal's payment-status update, unless its deal's state has none to make.

    A deal not replicated yet gets the command all the same: an unknown deal is retried
    (``Unit.locked_deal``), since PRS's deal and payment events travel separately.
    """
    action = WorkflowAction.UPDATE_PAYMENT_STATUS
    deal = await u.repo.deal(event.deal_id)
    if deal is not None and action not in allowed_actions(DealState(deal.state)):
        return {"payment_status_update": f"none: the deal is {deal.state}"}
    task_id = uuid.uuid5(PAYMENT_TASKS, event.payment_id)
    ctx.caused(
        PROCESS_DEAL_WORKFLOW.type,
        ProcessDealWorkflow(deal_id=event.deal_id, workflow_action=action),
        id=uuid.uuid5(task_id, "command"),
        task_id=task_id,
        organization_id=event.organization_id,
    )
    return {"payment_status_update": str(task_id)}


async def _foreign_deal(u: Unit, deal_id: str | None) -> bool:
    """Whether the upload names a deal of another organization than the uploader's.

    The file-processor refuses such uploads already; this keeps a verdict that got through
    anyway (or one about a deal not replicated yet, through its stored organization — see
    ``Repository.rejected_files``) from affecting another organization's deal.
    """
    if deal_id is None or u.caller_organization is None:
        return False
    deal = await u.repo.deal(deal_id)
    return deal is not None and not may_act_on(u.caller_organization, deal.organization_id)


def _not_for_deal(entity_id: str) -> dict[str, Any]:
    return {
        "applied": False,
        "entity": "file",
        "id": entity_id,
        "reason": "the deal is not one of the uploader's organization",
    }


async def on_file_processed(
    event: FileProcessed, ctx: HandlerContext, deps: Dependencies
) -> dict[str, Any]:
    if event.file_type != ATTACHMENT:
        return {
            "applied": False,
            "entity": "file",
            "id": event.file_id,
            "reason": "not an attachment",
        }
    u = Unit.of(ctx, deps)
    if await _foreign_deal(u, event.deal_id):
        return _not_for_deal(event.file_id)
    row = await u.repo.verdict_for_file(event.file_id)
    before = None if row is None else {"verdict": row.verdict}
    if row is None:
        row = AttachmentVerdict(file_id=event.file_id)
        u.repo.add(row)
    row.deal_id = event.deal_id
    row.organization_id = u.caller_organization
    row.verdict = event.scan[:50]
    row.detail = None
    row.recorded_at = u.now()
    await u.repo.flush()
    await _audit(
        u,
        "attachment",
        event.file_id,
        ctx.envelope.organization_id,
        before,
        {"deal_id": event.deal_id, "verdict": event.scan},
        f"file scan verdict: {event.scan}",
    )
    return _applied("attachment", event.file_id)


async def on_file_rejected(
    event: FileRejected, ctx: HandlerContext, deps: Dependencies
) -> dict[str, Any]:
    if event.file_type != ATTACHMENT or event.deal_id is None:
        return {
            "applied": False,
            "entity": "file",
            "id": event.original_filename,
            "reason": "not a deal attachment",
        }
    u = Unit.of(ctx, deps)
    if await _foreign_deal(u, event.deal_id):
        return _not_for_deal(event.original_filename)
    u.repo.add(
        AttachmentVerdict(
            file_id=None,
            deal_id=event.deal_id,
            organization_id=u.caller_organization,
            original_filename=event.original_filename[:255],
            verdict="rejected",
            detail=event.reason,
            recorded_at=u.now(),
        )
    )
    await u.repo.flush()
    await _audit(
        u,
        "attachment",
        f"{event.deal_id}/{event.original_filename}"[:200],
        ctx.envelope.organization_id,
        None,
        {"deal_id": event.deal_id, "verdict": "rejected", "reason": event.reason},
        f"file rejected: {event.reason}",
    )
    return _applied("attachment", event.original_filename)
