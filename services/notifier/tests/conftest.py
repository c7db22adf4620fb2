"""Fixtures of the notifier's tests: a real SMTP server (aiosmtpd), a local webhook receiver, the
notifier host against the real broker, and a tap on the events it publishes."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from notifier.bootstrap import NotifierHost, bootstrap
from notifier.settings import NotifierSettings
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.prs_events import (
    ORGANIZATION_CREATED,
    USER_CREATED,
    Organization,
    User,
)
from prs_shared.messaging.publisher import Publisher
from prs_shared.testing.fixtures import eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- SMTP -------------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class SinkHandler:
    """Answers DATA from a script (e.g. ``["421 4.3.0 busy"]``), then with 250; keeps what it took."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.received: list[Received] = []
        self.sessions = 0
        self._lock = threading.Lock()

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        with self._lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        with self._lock:
            if self.script:
                return self.script.pop(0)
            raw = envelope.original_content or envelope.content
            assert isinstance(raw, bytes)
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 OK"


@dataclass
class SmtpSink:
    handler: SinkHandler
    host: str
    port: int

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


@pytest.fixture
def smtp_sink() -> Any:
    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield SmtpSink(handler, "127.0.0.1", port)
    finally:
        controller.stop()


# --- webhook receiver -------------------------------------------------------------------------


@dataclass
class HookRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HookReceiver:
    """A minimal HTTP/1.1 server on 127.0.0.1 answering from a script of status codes."""

    statuses: list[int] = field(default_factory=list)
    requests: list[HookRequest] = field(default_factory=list)
    port: int = 0
    server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/prs"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(HookRequest(path, headers, body))
            status = self.statuses.pop(0) if self.statuses else 200
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def hook_receiver() -> AsyncIterator[HookReceiver]:
    receiver = HookReceiver()
    receiver.server = await asyncio.start_server(receiver._serve, "127.0.0.1", 0)
    receiver.port = receiver.server.sockets[0].getsockname()[1]
    yield receiver
    receiver.server.close()
    await receiver.server.wait_closed()


# --- the notifier -----------------------------------------------------------------------------


@pytest.fixture
def notifier_settings(
    amqp_url: str, namespace: str, tmp_path: Path, smtp_sink: SmtpSink
) -> Callable[..., NotifierSettings]:
    def make(database_url: str | None = None, **overrides: Any) -> NotifierSettings:
        values: dict[str, Any] = {
            "amqp_url": amqp_url,
            "namespace": namespace,
            "database_url": database_url or f"sqlite+aiosqlite:///{tmp_path / 'notifier.sqlite3'}",
            "data_dir": tmp_path,
            "email_backend": "smtp",
            "smtp_host": smtp_sink.host,
            "smtp_port": smtp_sink.port,
            "smtp_timeout": 5,
            "smtp_retry_window": 3,
            "mail_from": "PRS <no-reply@prs.test>",
            "retry_base_delay": 0.2,
            "heartbeat_interval": 60,
            "shutdown_grace": 5,
            "metrics_port": 0,
            "webhook_poll_interval": 0.1,
            "public_gateway_url": "https://prs.example.com",
        }
        values.update(overrides)
        return NotifierSettings(**values)

    return make


NotifierRunner = Callable[..., AbstractAsyncContextManager[NotifierHost]]


@pytest.fixture
def run_notifier(notifier_settings: Callable[..., NotifierSettings]) -> NotifierRunner:
    @asynccontextmanager
    async def run(database_url: str | None = None, **overrides: Any) -> AsyncIterator[NotifierHost]:
        host = bootstrap(notifier_settings(database_url, **overrides))
        await host.start()
        try:
            yield host
        finally:
            await host.stop()

    return run


# --- the directory ----------------------------------------------------------------------------

ORG = "org-1"


def user(user_id: str, email_: str, name: str, *roles: str, org: str = ORG, **extra: Any) -> User:
    return User(
        user_id=user_id,
        organization_id=org,
        email=email_,
        full_name=name,
        roles=list(roles),  # type: ignore[arg-type]
        **extra,
    )


DEFAULT_USERS = [
    user("u-sales", "sam@acme.example.com", "Sam Seller", "salesperson"),
    user("u-admin", "ada@acme.example.com", "Ada Admin", "admin"),
    user("u-verifier", "vic@acme.example.com", "Vic Verifier", "verifier"),
    user("u-both", "bo@acme.example.com", "Bo Both", "admin", "verifier"),
    user("u-finance", "fin@acme.example.com", "Fin Ance", "finance"),
    user("u-gone", "gone@acme.example.com", "Gone Away", "admin", active=False),
    user("u-other", "oz@other.example.com", "Oz Other", "admin", org="org-2"),
]


async def seed_directory(
    publisher: Publisher,
    host: NotifierHost,
    users: list[User] | None = None,
    org_name: str = "Acme Receivables",
) -> None:
    """Publish the PRS events the directory is built from and wait until it holds them."""
    from sqlalchemy import func, select

    from notifier.models import DirectoryUser

    users = DEFAULT_USERS if users is None else users
    await publisher.publish(
        Envelope(
            type=ORGANIZATION_CREATED.type,
            organization_id=ORG,
            payload=Organization(organization_id=ORG, name=org_name).model_dump(mode="json"),
        )
    )
    await asyncio.gather(
        *(
            publisher.publish(
                Envelope(
                    type=USER_CREATED.type,
                    organization_id=u.organization_id,
                    payload=u.model_dump(mode="json"),
                )
            )
            for u in users
        )
    )

    async def loaded() -> bool:
        async with host.sessions() as session:
            n = await session.scalar(select(func.count()).select_from(DirectoryUser))
            return n == len(users)

    await eventually(loaded, message="directory loaded")
    # The organization event was published first, but it travels on its own: wait for it too.
    from notifier.models import DirectoryOrganization

    async def org_loaded() -> bool:
        async with host.sessions() as session:
            return await session.get(DirectoryOrganization, ORG) is not None

    await eventually(org_loaded, message="organization loaded")


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


async def settle() -> None:
    """A quiet second, so that a message that should not arrive would have by now."""
    await asyncio.sleep(1.0)


class Kit:
    """Helpers the test modules share (conftest is not importable under importlib mode)."""

    ORG = ORG
    user = staticmethod(user)
    seed_directory = staticmethod(seed_directory)
    text_part = staticmethod(text_part)
    html_part = staticmethod(html_part)
    free_port = staticmethod(free_port)
    eventually = staticmethod(eventually)
    settle = staticmethod(settle)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
