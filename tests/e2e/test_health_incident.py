"""Issue 10's "an unhealthy SMTP raising one email and a recovery email", through the real
gateway and notifier (in this process), the real broker and a real SMTP server (aiosmtpd).

Two SMTP endpoints: the gateway's health check probes one (``PRS_SMTP_HOST``/``PORT`` of the
gateway), closed at first and opened later; the notifier sends through another that stays up,
so that the incident email itself can travel while the probed one is down.
"""

from __future__ import annotations

import email
import email.policy
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.state import GatewayState
from notifier.bootstrap import bootstrap
from notifier.settings import NotifierSettings
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.schedule import SYSTEM_HEALTH_CHECK, ScheduleTick
from prs_shared.testing.fixtures import eventually

pytestmark = pytest.mark.asyncio

OPERATOR = "ops@prs.example.com"
HISTORY = "/api/automated-processes/system-health/history/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 OK"

    def kinds_to(self, address: str) -> list[str]:
        return [str(m["X-PRS-Notification-Type"]) for to, m in self.messages if address in to]


@dataclass
class Services:
    http: httpx.AsyncClient
    admin_key: str
    state: GatewayState
    mail: Inbox
    """What the notifier's SMTP server received."""
    probed_port: int
    """The port the gateway's health check probes for SMTP; nothing listens there at first."""

    async def tick(self) -> None:
        """What the scheduler publishes every 5 minutes for the health_monitoring job."""
        tick = ScheduleTick(job="health_monitoring", scheduled_for=datetime.now(UTC))
        await self.state.host.publisher.publish(
            Envelope(type=SYSTEM_HEALTH_CHECK.type, payload=tick.model_dump(mode="json"))
        )

    async def snapshots(self) -> list[dict[str, Any]]:
        response = await self.http.get(
            HISTORY, headers={"Authorization": f"Bearer {self.admin_key}"}
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def check(self, count: int) -> dict[str, Any]:
        """Tick, wait for the ``count``-th snapshot, and return it."""
        await self.tick()

        async def recorded() -> list[dict[str, Any]] | None:
            items = await self.snapshots()
            return items if len(items) >= count else None

        items = await eventually(recorded, timeout=30, message=f"health snapshot {count}")
        assert len(items) == count
        newest: dict[str, Any] = items[0]
        return newest

    async def mail_to_operator(self, count: int) -> list[str]:
        async def arrived() -> list[str] | None:
            kinds = self.mail.kinds_to(OPERATOR)
            return kinds if len(kinds) >= count else None

        kinds: list[str] = await eventually(arrived, timeout=30, message=f"email {count}")
        return kinds


@pytest.fixture
async def services(
    amqp_url: str, namespace: str, database_url: str, tmp_path: Path
) -> AsyncIterator[Services]:
    inbox = Inbox()
    sink = Controller(inbox, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    sink.start()
    notifier = bootstrap(
        NotifierSettings(
            amqp_url=amqp_url,
            namespace=namespace,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'notifier.sqlite3'}",
            data_dir=tmp_path / "notifier",
            email_backend="smtp",
            smtp_host="127.0.0.1",
            smtp_port=sink.port,
            smtp_timeout=5,
            smtp_retry_window=3,
            operator_emails=OPERATOR,
            retry_base_delay=0.2,
            heartbeat_interval=0.5,
            shutdown_grace=5,
            metrics_port=0,
        )
    )
    probed = free_port()
    key = secrets.token_urlsafe(24)
    app = create_app(
        GatewaySettings(
            amqp_url=amqp_url,
            namespace=namespace,
            database_url=database_url,
            admin_api_key=key,
            heartbeat_interval=0.5,
            metrics_port=0,
            data_dir=tmp_path / "gateway",
            upload_dir=tmp_path / "uploads",
            smtp_host="127.0.0.1",
            smtp_port=probed,
        )
    )
    await notifier.start()
    try:
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
                yield Services(http, key, app.state.gateway, inbox, probed)
    finally:
        await notifier.stop()
        sink.stop()


async def test_an_unreachable_smtp_server_sends_the_operators_one_email_and_one_on_recovery(
    services: Services,
) -> None:
    first = await services.check(1)
    assert first["status"] == "unhealthy"
    assert first["checks"]["smtp"]["status"] == "error"
    assert first["checks"]["smtp"]["port"] == services.probed_port
    assert first["notified"] == "system_unhealthy"
    assert await services.mail_to_operator(1) == ["system_unhealthy"]
    (_, incident) = services.mail.messages[0]
    assert incident["Subject"] == "PRS is unhealthy: SMTP server unreachable"

    # Still down at the next check: the same incident, no second email.
    second = await services.check(2)
    assert second["status"] == "unhealthy"
    assert second["notified"] is None

    probed = Controller(Inbox(), hostname="127.0.0.1", port=services.probed_port, ready_timeout=10)
    probed.start()
    try:
        third = await services.check(3)
    finally:
        probed.stop()
    assert third["checks"]["smtp"]["status"] == "ok"
    # Up again; degraded, not healthy: only the gateway and the notifier run here.
    assert third["status"] == "degraded"
    assert third["notified"] == "system_recovered"
    # The recovery email follows the incident's, and nothing came in between (the second
    # check staged no command: its snapshot says so, and the count below does too).
    assert await services.mail_to_operator(2) == ["system_unhealthy", "system_recovered"]
    (_, recovery) = services.mail.messages[1]
    assert recovery["Subject"] == "PRS has recovered: degraded"
    assert len(services.mail.messages) == 2
