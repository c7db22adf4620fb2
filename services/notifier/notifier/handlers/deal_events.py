"""Deal and report events the notifier tells people about, by email and by webhook.

The handlers only decide and record: who should be emailed becomes one ``notification.send``
command per message (sent through the outbox, so each email has its own retries, dead letter and
ledger row), and which webhook endpoints should hear of the event becomes pending delivery rows.
Both commit with the event's inbox record, so a redelivered event adds neither.

Who is emailed:

- ``deal.verified`` → ``verification_approved`` to the deal's salesperson. Verifiers are not
  copied: one of them made the decision, and the event reaches them in PRS itself.
- ``deal.rejected`` → ``verification_rejected`` to the salesperson, and to the organization's
  verifiers when the deal needs a manual review (they are the ones who must act).
- ``deal.payment_status_changed`` to ``partially_paid``, ``paid`` or ``overpaid`` with a
  ``last_payment_amount`` → ``payment_received`` to the salesperson.
- ``deal.overdue`` → ``deal_overdue`` to the salesperson and the organization's finance users.
- ``deal.verification_reminder_due`` → ``verification_reminder`` to the organization's admins
  and verifiers (each person once).
- ``report.audit.generated`` → ``audit_report_ready`` to the user who asked for it when the
  directory knows them, otherwise to the organization's admins; a report over every
  organization with no known requester emails nobody.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from notifier import directory
from notifier.webhook_service import stage_deliveries
from prs_shared.messaging.deals import (
    AuditReportGenerated,
    DealOutcome,
    DealOverdue,
    DealRejected,
    DealVerified,
    PaymentStatus,
    PaymentStatusChanged,
    VerificationReminderDue,
)
from prs_shared.messaging.errors import PermanentError
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.notifications import (
    SEND_NOTIFICATION,
    NotificationType,
    SendNotification,
)
from prs_shared.messaging.prs_events import UserRole
from prs_shared.tenancy import may_act_on

Clock = Callable[[], datetime]

PAYMENT_RECEIVED_STATES = frozenset(
    {PaymentStatus.PARTIALLY_PAID, PaymentStatus.PAID, PaymentStatus.OVERPAID}
)


async def on_deal_verified(
    payload: DealVerified, ctx: HandlerContext, clock: Clock
) -> dict[str, Any]:
    data = {**_deal_data(payload), "checks": payload.checks}
    users = [payload.salesperson_id] if payload.salesperson_id else []
    return await _notify(
        ctx,
        clock,
        payload.organization_id,
        NotificationType.VERIFICATION_APPROVED,
        users,
        deal_id=payload.deal_id,
        data=data,
    )


async def on_deal_rejected(
    payload: DealRejected, ctx: HandlerContext, clock: Clock
) -> dict[str, Any]:
    data = {
        **_deal_data(payload),
        "reasons": payload.reasons,
        "manual_review": payload.manual_review,
    }
    users = [payload.salesperson_id] if payload.salesperson_id else []
    if payload.manual_review:
        users += await _with_roles(ctx.session, payload.organization_id, [UserRole.VERIFIER])
    return await _notify(
        ctx,
        clock,
        payload.organization_id,
        NotificationType.VERIFICATION_REJECTED,
        users,
        deal_id=payload.deal_id,
        data=data,
    )


async def on_payment_status_changed(
    payload: PaymentStatusChanged, ctx: HandlerContext, clock: Clock
) -> dict[str, Any]:
    users: list[str] = []
    if (
        payload.current in PAYMENT_RECEIVED_STATES
        and payload.last_payment_amount is not None
        and payload.salesperson_id
    ):
        users = [payload.salesperson_id]
    data = {
        **_deal_data(payload),
        "amount": str(payload.last_payment_amount or ""),
        "paid_total": str(payload.paid_total),
        "status": payload.current.value,
        "previous_status": payload.previous.value,
    }
    return await _notify(
        ctx,
        clock,
        payload.organization_id,
        NotificationType.PAYMENT_RECEIVED,
        users,
        deal_id=payload.deal_id,
        data=data,
    )


async def on_deal_overdue(
    payload: DealOverdue, ctx: HandlerContext, clock: Clock
) -> dict[str, Any]:
    data = {
        **_deal_data(payload),
        "due_date": payload.due_date.isoformat(),
        "outstanding": str(payload.outstanding),
        "period": payload.period,
    }
    users = [payload.salesperson_id] if payload.salesperson_id else []
    users += await _with_roles(ctx.session, payload.organization_id, [UserRole.FINANCE])
    return await _notify(
        ctx,
        clock,
        payload.organization_id,
        NotificationType.DEAL_OVERDUE,
        users,
        deal_id=payload.deal_id,
        data=data,
    )


async def on_verification_reminder_due(
    payload: VerificationReminderDue, ctx: HandlerContext, clock: Clock
) -> dict[str, Any]:
    users = await _with_roles(
        ctx.session, payload.organization_id, [UserRole.ADMIN, UserRole.VERIFIER]
    )
    data = {
        "deal_ids": list(payload.deal_ids),
        "oldest_pending_since": payload.oldest_pending_since.isoformat(),
        "day": payload.day.isoformat(),
    }
    return await _notify(
        ctx,
        clock,
        payload.organization_id,
        NotificationType.VERIFICATION_REMINDER,
        users,
        data=data,
    )


async def on_audit_report_generated(
    payload: AuditReportGenerated, ctx: HandlerContext, clock: Clock
) -> dict[str, Any]:
    org_id = payload.organization_id
    users: list[str] = []
    # A requester of another organization than the report's is not told about it.
    requester = (
        await directory.user_of(ctx.session, payload.requested_by, org_id)
        if payload.requested_by
        else None
    )
    if requester is not None and requester.active:
        users = [requester.user_id]
        org_id = org_id or requester.organization_id
    elif org_id is not None:
        users = await _with_roles(ctx.session, org_id, [UserRole.ADMIN])
    data = {
        "report_id": payload.report_id,
        "report_type": payload.report_type,
        "days": payload.days,
        "formats": sorted(payload.files),
    }
    return await _notify(ctx, clock, org_id, NotificationType.AUDIT_REPORT_READY, users, data=data)


# --- helpers ------------------------------------------------------------------------------------


def _deal_data(payload: DealOutcome) -> dict[str, Any]:
    return {
        "client_name": payload.client_name,
        "value": str(payload.value),
        "currency": payload.currency,
    }


async def _with_roles(
    session: AsyncSession, organization_id: str, roles: Iterable[UserRole]
) -> list[str]:
    found: list[str] = []
    for role in roles:
        found += [
            u.user_id for u in await directory.users_with_role(session, organization_id, role)
        ]
    return found


async def _notify(
    ctx: HandlerContext,
    clock: Clock,
    organization_id: str | None,
    kind: NotificationType,
    user_ids: Iterable[str],
    *,
    deal_id: str | None = None,
    data: dict[str, Any],
) -> dict[str, Any]:
    caller = ctx.envelope.organization_id
    if not may_act_on(caller, organization_id):
        # Deal-workflow announces an organization's event in that organization's name; one
        # carried by another organization's message is refused before anyone is emailed or any
        # webhook is staged (DESIGN.md §3 rule 8).
        raise PermanentError(
            f"an event of organization {organization_id!r} came in a message of {caller!r}"
        )
    unique = list(dict.fromkeys(user_ids))
    for user_id in unique:
        command = SendNotification(
            notification_type=kind,
            recipient_type="user",
            user_id=user_id,
            deal_id=deal_id,
            additional_data=data,
        )
        ctx.caused(SEND_NOTIFICATION.type, command, organization_id=organization_id)
    webhooks = (
        await stage_deliveries(ctx.session, ctx.envelope, organization_id, clock())
        if organization_id is not None
        else 0
    )
    return {"notification_type": kind.value, "recipients": unique, "webhooks": webhooks}
