"""Composition root of the notifier service: real adapters wired to the handlers.

Tests pass their own mailer, clock or webhook sender to :func:`bootstrap`; everything else is
built from settings here and nowhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from notifier.adapters.file_outbox import FileOutboxMailer
from notifier.adapters.smtp import SmtpMailer
from notifier.adapters.webhook_client import EndpointPolicy, HttpWebhookClient
from notifier.handlers import deal_events, directory, notifications, webhooks
from notifier.ledger import MailLedger
from notifier.mailer import Mailer
from notifier.rendering import Renderer
from notifier.settings import NotifierSettings
from notifier.webhook_dispatcher import WebhookDispatcher, WebhookSender
from prs_shared.db.engine import create_engine, is_sqlite, session_factory
from prs_shared.db.migrations import upgrade
from prs_shared.diagnostics import base_handlers
from prs_shared.messaging import deals, prs_events
from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.handlers import Handler, HandlerRegistry
from prs_shared.messaging.notifications import SEND_NOTIFICATION
from prs_shared.messaging.outbox import OutboxRelay
from prs_shared.messaging.topology import Topology
from prs_shared.messaging.webhooks import REGISTER_WEBHOOK
from prs_shared.service import ServiceHost

MIGRATIONS = Path(__file__).parent / "migrations"
COMMAND_QUEUES = ("auth", "notifications")

Clock = Callable[[], datetime]


def build_mailer(settings: NotifierSettings) -> Mailer:
    if settings.email_backend == "file":
        return FileOutboxMailer(settings.outbox_dir())
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpMailer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        mail_from=settings.mail_from,
        username=settings.smtp_username,
        password=password,
        use_tls=settings.smtp_tls,
        start_tls=settings.smtp_starttls,
        timeout=settings.smtp_timeout,
        pool_size=settings.smtp_pool_size,
    )


@dataclass
class Components:
    """The notifier's adapters and services, built once per process."""

    settings: NotifierSettings
    clock: Clock
    mailer: Mailer
    renderer: Renderer
    ledger_engine: AsyncEngine
    ledger: MailLedger
    ledger_apart: bool
    """True when the ledger lives in its own database (SQLite), with its own outbox relay."""
    policy: EndpointPolicy
    webhook_sender: WebhookSender


def build_components(
    settings: NotifierSettings,
    *,
    mailer: Mailer | None = None,
    clock: Clock = utcnow,
    webhook_sender: WebhookSender | None = None,
) -> Components:
    ledger_url = settings.ledger_database_url()
    # Its own pool: a handler holds a connection for its transaction while the ledger commits
    # on another, so one shared pool could run dry with every handler waiting for a second.
    # Five is plenty for one short commit per mail sent (over at most smtp_pool_size sessions).
    ledger_engine = create_engine(
        ledger_url,
        pool_size=min(5, settings.db_pool_size),
        max_overflow=min(5, settings.db_pool_overflow),
    )
    policy = EndpointPolicy(allow_private=settings.webhook_allow_private)
    return Components(
        settings=settings,
        clock=clock,
        mailer=mailer or build_mailer(settings),
        renderer=Renderer(),
        ledger_engine=ledger_engine,
        ledger=MailLedger(ledger_engine, Topology(namespace=settings.namespace)),
        ledger_apart=is_sqlite(ledger_url),
        policy=policy,
        webhook_sender=webhook_sender
        or HttpWebhookClient(policy, timeout=settings.webhook_timeout),
    )


def handlers(components: Components) -> HandlerRegistry:
    """Every message the service handles, and the function that handles it."""
    c = components
    mail = notifications.MailDeps(
        renderer=c.renderer, mailer=c.mailer, ledger=c.ledger, settings=c.settings, clock=c.clock
    )
    hooks = webhooks.WebhookDeps(policy=c.policy, clock=c.clock)
    return HandlerRegistry(
        [
            *base_handlers(),
            # Commands
            Handler(SEND_NOTIFICATION, notifications.handle_send_notification, mail),
            Handler(REGISTER_WEBHOOK, webhooks.handle_register_webhook, hooks),
            # The directory of users and organizations
            Handler(prs_events.USER_CREATED, directory.on_user, c.clock),
            Handler(prs_events.USER_CHANGED, directory.on_user, c.clock),
            Handler(prs_events.ORGANIZATION_CREATED, directory.on_organization, c.clock),
            Handler(prs_events.ORGANIZATION_CHANGED, directory.on_organization, c.clock),
            # Deal outcomes that someone is told about
            Handler(deals.DEAL_VERIFIED, deal_events.on_deal_verified, c.clock),
            Handler(deals.DEAL_REJECTED, deal_events.on_deal_rejected, c.clock),
            Handler(deals.PAYMENT_STATUS_CHANGED, deal_events.on_payment_status_changed, c.clock),
            Handler(deals.DEAL_OVERDUE, deal_events.on_deal_overdue, c.clock),
            Handler(
                deals.VERIFICATION_REMINDER_DUE, deal_events.on_verification_reminder_due, c.clock
            ),
            Handler(deals.AUDIT_REPORT_GENERATED, deal_events.on_audit_report_generated, c.clock),
        ]
    )


class NotifierHost(ServiceHost):
    """The service host plus what only the notifier runs: the ledger's own database and relay
    (on SQLite) and the webhook dispatcher."""

    def __init__(self, components: Components) -> None:
        super().__init__(
            components.settings,
            handlers=handlers(components),
            command_queues=COMMAND_QUEUES,
            migrations=MIGRATIONS,
        )
        self.components = components
        self.dispatcher: WebhookDispatcher
        self._ledger_relay: OutboxRelay | None = None
        self._own_tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        c = self.components
        if c.ledger_apart:
            await upgrade(c.ledger_engine, MIGRATIONS)
        await super().start()
        if c.ledger_apart:
            self._ledger_relay = OutboxRelay(session_factory(c.ledger_engine), self.publisher)
            c.ledger.on_committed = self._ledger_relay.notify
            self._own_tasks.append(asyncio.ensure_future(self._ledger_relay.run()))
        else:
            c.ledger.on_committed = self.relay.notify
        s = c.settings
        self.dispatcher = WebhookDispatcher(
            self.sessions,
            c.webhook_sender,
            clock=c.clock,
            max_attempts=s.webhook_max_attempts,
            base_delay=s.webhook_retry_base_delay,
            max_delay=s.webhook_retry_max_delay,
            poll_interval=s.webhook_poll_interval,
            lease=s.webhook_timeout * 2 + 30,
        )
        self._own_tasks.append(asyncio.ensure_future(self.dispatcher.run()))

    async def stop(self) -> None:
        # In-flight emails commit their ledger events during the runtime's grace period; let the
        # ledger relay publish them before the broker connection goes.
        await self.runtime.stop()
        self.dispatcher.stop()
        if self._ledger_relay is not None:
            self._ledger_relay.stop()
        if self._own_tasks:
            _, pending = await asyncio.wait(self._own_tasks, timeout=5)
            for task in pending:
                task.cancel()
        await super().stop()
        c = self.components
        await c.mailer.close()
        await c.webhook_sender.close()
        await c.ledger_engine.dispose()


def bootstrap(
    settings: NotifierSettings | None = None,
    *,
    mailer: Mailer | None = None,
    clock: Clock = utcnow,
    webhook_sender: WebhookSender | None = None,
) -> NotifierHost:
    settings = settings or NotifierSettings()
    return NotifierHost(
        build_components(settings, mailer=mailer, clock=clock, webhook_sender=webhook_sender)
    )
