"""``notification.send``: resolve the recipients, render, send each email exactly once in effect.

One email per recipient (nobody sees another recipient's address), each with its own ledger row
keyed by the command's message id and the address. What each email's fate was is committed in
the ledger as it happens; see :mod:`notifier.ledger` for why that is apart from the handler's
transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from notifier import directory
from notifier.ledger import SENT, MailLedger, MailRecord
from notifier.mailer import Mailer, MailPermanentError, MailTransientError, send_with_retry
from notifier.rendering import (
    Recipient,
    Renderer,
    build_email,
    mail_id,
    message_id_header,
)
from notifier.settings import NotifierSettings
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.errors import PermanentError, TransientError
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.notifications import (
    NOTIFICATION_FAILED,
    NOTIFICATION_SENT,
    NotificationOutcome,
    NotificationType,
    SendNotification,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class MailDeps:
    """What sending needs, bound once in the composition root."""

    renderer: Renderer
    mailer: Mailer
    ledger: MailLedger
    settings: NotifierSettings
    clock: Clock


@dataclass(frozen=True)
class Addressee:
    recipient: Recipient
    organization_id: str | None
    password_expires_at: datetime | None = None


@dataclass(frozen=True)
class Outgoing:
    record: MailRecord
    message: EmailMessage


async def handle_send_notification(
    payload: SendNotification, ctx: HandlerContext, deps: MailDeps
) -> dict[str, Any]:
    addressees = await resolve_recipients(
        ctx.session,
        payload,
        ctx.envelope.organization_id,
        operators=deps.settings.operator_addresses(),
    )
    if not addressees:
        log.warning(
            "%s for the operators not sent: PRS_OPERATOR_EMAILS names nobody",
            payload.notification_type.value,
        )
    # Build every email before sending any: a request that cannot be rendered for one recipient
    # fails as a whole, before anyone got a copy.
    outgoing = [
        await _compose(payload, ctx.envelope, addressee, ctx.session, deps)
        for addressee in addressees
    ]
    final_attempt = ctx.attempt > deps.settings.max_retries
    outcomes = await asyncio.gather(
        *(_deliver(item, ctx.envelope, deps, final_attempt) for item in outgoing),
        return_exceptions=True,
    )
    sent: list[str] = []
    already: list[str] = []
    transient: list[BaseException] = []
    permanent: list[str] = []
    for item, outcome in zip(outgoing, outcomes, strict=True):
        if isinstance(outcome, PermanentError):
            permanent.append(f"{item.record.recipient}: {outcome}")
        elif isinstance(outcome, BaseException):
            transient.append(outcome)
        elif outcome == SENT:
            already.append(item.record.recipient)
        else:
            sent.append(item.record.recipient)
    if transient:
        # The rest is in the ledger; a retry sends only what has not gone out.
        raise transient[0]
    if permanent:
        raise PermanentError("; ".join(permanent))
    return {
        "notification_type": payload.notification_type.value,
        "sent": sent,
        "already_sent": already,
        "message_ids": [item.record.message_id_header for item in outgoing],
    }


async def resolve_recipients(
    session: AsyncSession,
    payload: SendNotification,
    organization_id: str | None,
    *,
    operators: Sequence[str] = (),
) -> list[Addressee]:
    """Who gets the email. Failures to resolve are permanent: the same request fails again.

    ``organization_id`` is the caller's organization (None: a key that may act for any). A user
    of another organization is refused exactly like an unknown user, so the answer never tells
    a caller that a user id exists elsewhere (DESIGN.md §3 rule 8).

    ``operators`` (``PRS_OPERATOR_EMAILS``) are the recipients of ``recipient_type="operators"``,
    which only a message of no organization may name; none configured: nobody (the handler
    logs it), rather than dead letters at every incident of an installation without them.
    """
    if payload.recipient_type == "operators":
        if organization_id is not None:
            raise PermanentError(
                "the operators are notified of the whole system only, not for organization "
                f"{organization_id!r}"
            )
        return [Addressee(Recipient(address=a), None) for a in operators]
    if payload.recipient_type == "email":
        assert payload.email is not None
        address = str(payload.email)
        # The gateway lets only admin keys name an address. A scoped one may only reach its own
        # organization's people: PRS tells the notifier no organization's mail domains, and a
        # domain guessed from users' addresses may be a public mail provider, so the address
        # itself must be one of the organization's active users'.
        if organization_id is not None and not await directory.has_address(
            session, organization_id, address
        ):
            raise PermanentError(
                f"no active user of organization {organization_id!r} has the address {address!r}"
            )
        return [Addressee(Recipient(address=address), organization_id)]
    if payload.recipient_type == "user":
        assert payload.user_id is not None
        user = await directory.user_of(session, payload.user_id, organization_id)
        if user is None:
            # The directory is a replica fed by user events on another queue: a request that
            # overtook its user's user.created succeeds on a later attempt. Retried with
            # backoff, then dead-lettered with this error, like any transient failure.
            raise TransientError(
                f"unknown user {payload.user_id!r}: no user.created event for it has reached "
                "the notifier"
            )
        if not user.active:
            raise PermanentError(f"user {payload.user_id!r} is inactive")
        return [
            Addressee(
                Recipient(address=user.email, name=user.full_name, user_id=user.user_id),
                user.organization_id,
                user.password_expires_at,
            )
        ]
    assert payload.role is not None
    if organization_id is None:
        raise PermanentError("a notification to a role needs the envelope's organization_id")
    users = await directory.users_with_role(session, organization_id, payload.role)
    if not users:
        raise PermanentError(
            f"organization {organization_id!r} has no active user with role {payload.role.value!r}"
        )
    return [
        Addressee(
            Recipient(address=u.email, name=u.full_name, user_id=u.user_id),
            u.organization_id,
            u.password_expires_at,
        )
        for u in users
    ]


async def _compose(
    payload: SendNotification,
    envelope: Envelope,
    addressee: Addressee,
    session: AsyncSession,
    deps: MailDeps,
) -> Outgoing:
    kind = payload.notification_type
    settings = deps.settings
    recipient = addressee.recipient
    org_id = addressee.organization_id
    org_name = await directory.organization_name(session, org_id) or org_id or "PRS"
    rendered = deps.renderer.render(kind, _context(payload, addressee, org_name, settings))
    identifier = mail_id(str(envelope.id), recipient.address)
    header = message_id_header(identifier, settings.mail_from)
    message = build_email(
        rendered,
        mail_from=settings.mail_from,
        recipient=recipient,
        message_id=header,
        sent_at=deps.clock(),
        kind=kind,
    )
    record = MailRecord(
        mail_id=identifier,
        source_message_id=str(envelope.id),
        correlation_id=str(envelope.correlation_id),
        notification_type=kind.value,
        organization_id=org_id,
        user_id=recipient.user_id,
        recipient=recipient.address,
        subject=rendered.subject,
        message_id_header=header,
    )
    return Outgoing(record, message)


def _context(
    payload: SendNotification, addressee: Addressee, org_name: str, settings: NotifierSettings
) -> dict[str, Any]:
    data = dict(payload.additional_data)
    report_url = None
    if payload.notification_type is NotificationType.AUDIT_REPORT_READY and data.get("report_id"):
        report_url = report_download_url(settings.public_gateway_url, str(data["report_id"]))
    return {
        "kind": payload.notification_type.value,
        "org_name": org_name,
        "recipient_name": addressee.recipient.name,
        "recipient_email": addressee.recipient.address,
        "deal_id": payload.deal_id or data.get("deal_id") or "",
        "data": data,
        "password_expires_at": data.get("expires_at") or addressee.password_expires_at,
        "report_url": report_url,
    }


def report_download_url(public_gateway_url: str, report_id: str) -> str:
    base = public_gateway_url.rstrip("/")
    return (
        f"{base}/api/automated-processes/reports/{quote(report_id, safe='')}/download?format=html"
    )


async def _deliver(item: Outgoing, envelope: Envelope, deps: MailDeps, final_attempt: bool) -> str:
    """Send one email unless the ledger says it went out already; returns ``sent`` for that."""
    record, ledger, clock = item.record, deps.ledger, deps.clock
    async with ledger.exclusive(record.mail_id) as conn:
        prior = await ledger.claim(conn, record, clock())
        if prior == SENT:
            log.info("email %s went out before; not sending it again", record.mail_id)
            return SENT
        if prior is not None:
            # 'sending': an earlier try died or failed after claiming, perhaps after the server
            # took the message. Sending again with the same Message-ID is the documented choice.
            log.warning(
                "email %s was %s in an earlier attempt; sending it again with Message-ID %s",
                record.mail_id,
                prior,
                record.message_id_header,
            )
        settings = deps.settings
        try:
            await send_with_retry(
                deps.mailer,
                item.message,
                attempts=settings.smtp_retry_attempts,
                window=settings.smtp_retry_window,
            )
        except MailPermanentError as exc:
            error = str(exc)
            await ledger.mark_failed(
                conn, record.mail_id, error, clock(), [_outcome(envelope, record, error)]
            )
            raise PermanentError(error) from exc
        except MailTransientError as exc:
            error = str(exc)
            if final_attempt:
                await ledger.mark_failed(
                    conn, record.mail_id, error, clock(), [_outcome(envelope, record, error)]
                )
            else:
                await ledger.note_error(conn, record.mail_id, error, clock())
            raise TransientError(error) from exc
        await ledger.mark_sent(conn, record.mail_id, clock(), [_outcome(envelope, record, None)])
    return "sent_now"


def _outcome(envelope: Envelope, record: MailRecord, error: str | None) -> Envelope:
    payload = NotificationOutcome(
        notification_type=NotificationType(record.notification_type),
        recipients=[record.recipient],
        message_id=record.message_id_header,
        error=error,
    )
    type_ = NOTIFICATION_FAILED.type if error is not None else NOTIFICATION_SENT.type
    return envelope.caused(type_, payload, organization_id=record.organization_id)
