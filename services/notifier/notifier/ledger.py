"""The sent-mail ledger: what was sent to whom, committed apart from the message's transaction.

An SMTP server is not part of any database transaction, so the inbox alone cannot make an email
exactly-once: a crash after the server's 250 and before the handler's commit would send it again.
The ledger narrows that gap (docs/adr/0003-notifier-exactly-once.md):

1. ``claim`` commits ``status='sending'`` for the email before a byte goes to the server;
2. the email is sent;
3. ``mark_sent`` commits ``status='sent'`` together with the ``notification.sent`` event (an
   outbox row) right after the server's reply.

A redelivery finds ``sent`` and skips; finds ``sending`` and knows the earlier outcome is unknown.
Concurrent deliveries of the same email are kept apart by a PostgreSQL advisory lock held for the
whole claim, send and mark sequence (released by the server if the holder dies). On SQLite the
handlers of a service already run one at a time (each holds the write lock of the service
database), so no lock is needed there.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notifier.models import SentMail
from prs_shared.db.tables import outbox
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.errors import TransientError
from prs_shared.messaging.outbox import outbox_rows
from prs_shared.messaging.topology import Topology

log = logging.getLogger(__name__)

SENDING = "sending"
SENT = "sent"
FAILED = "failed"


@dataclass(frozen=True)
class MailRecord:
    """What the ledger keeps about one email before it is sent."""

    mail_id: str
    source_message_id: str
    correlation_id: str | None
    notification_type: str
    organization_id: str | None
    user_id: str | None
    recipient: str
    subject: str
    message_id_header: str


class MailInFlight(TransientError):
    """Another worker is sending this very email right now; try again later."""


class MailLedger:
    """Commits ledger rows (and the events that announce them) on its own connections."""

    def __init__(
        self,
        engine: AsyncEngine,
        topology: Topology,
        *,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self._topology = topology
        self._postgres = engine.dialect.name == "postgresql"
        self.on_committed = on_committed

    @asynccontextmanager
    async def exclusive(self, mail_id: str) -> AsyncIterator[AsyncConnection]:
        """A connection on which this worker alone handles ``mail_id`` until the block ends."""
        async with self.engine.connect() as conn:
            if not self._postgres:
                yield conn
                return
            key = int.from_bytes(uuid.UUID(mail_id).bytes[:8], "big", signed=True)
            locked = await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
            await conn.commit()
            if not locked:
                raise MailInFlight(f"email {mail_id} is being sent by another worker")
            try:
                yield conn
            finally:
                if not conn.closed and not conn.invalidated:
                    await conn.rollback()
                    await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    await conn.commit()

    async def claim(self, conn: AsyncConnection, mail: MailRecord, now: datetime) -> str | None:
        """Commit ``sending`` for the email; returns the status an earlier attempt left, if any."""
        async with conn.begin():
            prior = await conn.scalar(
                select(SentMail.status).where(SentMail.mail_id == mail.mail_id)
            )
            if prior == SENT:
                return prior
            if prior is None:
                await conn.execute(
                    insert(SentMail).values(
                        mail_id=mail.mail_id,
                        source_message_id=mail.source_message_id,
                        correlation_id=mail.correlation_id,
                        notification_type=mail.notification_type,
                        organization_id=mail.organization_id,
                        user_id=mail.user_id,
                        recipient=mail.recipient,
                        subject=mail.subject,
                        message_id_header=mail.message_id_header,
                        status=SENDING,
                        attempts=1,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                await conn.execute(
                    update(SentMail)
                    .where(SentMail.mail_id == mail.mail_id)
                    .values(status=SENDING, attempts=SentMail.attempts + 1, updated_at=now)
                )
        return prior

    async def mark_sent(
        self, conn: AsyncConnection, mail_id: str, now: datetime, events: Sequence[Envelope]
    ) -> None:
        await self._finish(
            conn, mail_id, {"status": SENT, "sent_at": now, "error": None}, now, events
        )

    async def mark_failed(
        self,
        conn: AsyncConnection,
        mail_id: str,
        error: str,
        now: datetime,
        events: Sequence[Envelope],
    ) -> None:
        await self._finish(conn, mail_id, {"status": FAILED, "error": error[:2000]}, now, events)

    async def note_error(
        self, conn: AsyncConnection, mail_id: str, error: str, now: datetime
    ) -> None:
        """Keep the last transient error; the row stays ``sending`` (the outcome may be unknown)."""
        await self._finish(conn, mail_id, {"error": error[:2000]}, now, ())

    async def status(self, mail_id: str) -> str | None:
        async with self.engine.connect() as conn:
            return await conn.scalar(select(SentMail.status).where(SentMail.mail_id == mail_id))

    async def _finish(
        self,
        conn: AsyncConnection,
        mail_id: str,
        values: dict[str, object],
        now: datetime,
        events: Sequence[Envelope],
    ) -> None:
        async with conn.begin():
            await conn.execute(
                update(SentMail).where(SentMail.mail_id == mail_id).values(**values, updated_at=now)
            )
            rows = outbox_rows(list(events), self._topology)
            if rows:
                await conn.execute(insert(outbox), rows)
        if events and self.on_committed is not None:
            self.on_committed()
