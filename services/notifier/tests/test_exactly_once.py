"""The sent-mail ledger decides what a redelivered request sends (docs/adr/0003)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import update

from notifier.bootstrap import MIGRATIONS, Components, build_components
from notifier.directory import upsert_user
from notifier.handlers.notifications import MailDeps, handle_send_notification
from notifier.ledger import SENDING, SENT
from notifier.models import SentMail
from notifier.rendering import mail_id, message_id_header
from notifier.settings import NotifierSettings
from prs_shared.db.engine import create_engine, session_factory
from prs_shared.db.migrations import upgrade
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.notifications import SEND_NOTIFICATION, SendNotification
from prs_shared.messaging.prs_events import User

ADDRESS = "sam@acme.example.com"


class RecordingMailer:
    def __init__(self, delay: float = 0.0) -> None:
        self.sent: list[EmailMessage] = []
        self.delay = delay

    async def send(self, message: EmailMessage) -> None:
        await asyncio.sleep(self.delay)
        self.sent.append(message)

    async def close(self) -> None:
        return None


@dataclass
class Rig:
    components: Components
    mailer: RecordingMailer
    sessions: object

    async def handle(self, envelope: Envelope) -> dict[str, object] | None:
        payload = SendNotification.model_validate(envelope.payload)
        deps = MailDeps(
            renderer=self.components.renderer,
            mailer=self.mailer,
            ledger=self.components.ledger,
            settings=self.components.settings,
            clock=self.components.clock,
        )
        async with self.sessions() as session, session.begin():  # type: ignore[operator]
            ctx = HandlerContext(
                envelope=envelope,
                session=session,
                service="notifier",
                worker="w",
                attempt=1,
                queue="auth",
            )
            return await handle_send_notification(payload, ctx, deps)


@pytest.fixture
async def rig(database_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    settings = NotifierSettings(
        database_url=database_url, data_dir=tmp_path, mail_from="PRS <no-reply@prs.example.com>"
    )
    mailer = RecordingMailer(delay=0.05)
    components = build_components(settings, mailer=mailer)
    engine = create_engine(database_url)
    await upgrade(engine, MIGRATIONS)
    if components.ledger_apart:
        await upgrade(components.ledger_engine, MIGRATIONS)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        await upsert_user(
            session,
            User(user_id="u-1", organization_id="org-1", email=ADDRESS, full_name="Sam Seller"),
            components.clock(),
        )
    yield Rig(components, mailer, sessions)
    await components.ledger_engine.dispose()
    await engine.dispose()


def request() -> Envelope:
    return Envelope(
        type=SEND_NOTIFICATION.type,
        organization_id="org-1",
        payload={"notification_type": "password_reset", "user_id": "u-1"},
    )


async def force_status(rig: Rig, envelope: Envelope, status: str) -> None:
    async with rig.components.ledger.engine.begin() as conn:
        await conn.execute(
            update(SentMail)
            .where(SentMail.mail_id == mail_id(str(envelope.id), ADDRESS))
            .values(status=status)
        )


async def test_a_request_whose_email_is_marked_sent_sends_nothing_again(rig: Rig) -> None:
    envelope = request()
    await rig.handle(envelope)
    # The handler's transaction never committed (a crash after the ledger's commit): the message
    # comes back and runs again, but the ledger remembers.
    result = await rig.handle(envelope)
    assert len(rig.mailer.sent) == 1
    assert result is not None
    assert result["already_sent"] == [ADDRESS]


async def test_an_email_left_sending_is_sent_again_with_the_same_message_id(rig: Rig) -> None:
    envelope = request()
    await rig.handle(envelope)
    await force_status(rig, envelope, SENDING)  # died between the server's 250 and the mark
    await rig.handle(envelope)
    assert len(rig.mailer.sent) == 2
    first, second = (m["Message-ID"] for m in rig.mailer.sent)
    assert (
        first
        == second
        == message_id_header(mail_id(str(envelope.id), ADDRESS), "no-reply@prs.example.com")
    )
    assert await rig.components.ledger.status(mail_id(str(envelope.id), ADDRESS)) == SENT


async def test_the_same_request_handled_twice_at_once_sends_one_email(rig: Rig) -> None:
    envelope = request()
    outcomes = await asyncio.gather(
        rig.handle(envelope), rig.handle(envelope), return_exceptions=True
    )
    assert len(rig.mailer.sent) == 1
    # The loser either waited its turn and found the email sent, or was told to retry later.
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            assert "being sent by another worker" in str(outcome)
