"""Email over SMTP with aiosmtplib, on a small pool of reused connections.

Opening an SMTP session costs a TCP handshake, a greeting, EHLO, often STARTTLS and AUTH —
several round trips before the first byte of mail. Keeping a few authenticated sessions open and
handing each send an idle one pays that once per connection instead of once per email.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import logging
import ssl
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

import aiosmtplib
from aiosmtplib import (
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPServerDisconnected,
)

from notifier.mailer import MailPermanentError, MailTransientError

log = logging.getLogger(__name__)

# Replies after which the server closes the session (RFC 5321 §3.8) or its state is unknown.
_SESSION_ENDING_CODES = frozenset({421})


class SmtpMailer:
    """A :class:`~notifier.mailer.Mailer` over at most ``pool_size`` concurrent SMTP sessions."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        mail_from: str,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool = False,
        timeout: float = 10.0,
        pool_size: int = 4,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._options = {
            "hostname": host,
            "port": port,
            "username": username,
            "password": password,
            "use_tls": use_tls,
            "start_tls": start_tls,
            "timeout": timeout,
            "tls_context": tls_context,
        }
        self._sender = parseaddr(mail_from)[1]
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[aiosmtplib.SMTP] = []
        self._closed = False
        self.connections_opened = 0

    async def send(self, message: EmailMessage) -> None:
        recipients = _recipients(message)
        if not recipients:
            raise MailPermanentError("the message has no recipient")
        # Flattened once, here, rather than by the client on every try: rendering headers with the
        # email package costs more CPU than the SMTP exchange itself on a reused session.
        payload: bytes | None = None
        if self._sender.isascii() and all(r.isascii() for r in recipients):
            payload = message.as_bytes(policy=email.policy.SMTP)
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            reused = client is not None
            try:
                if client is None:
                    client = await self._connect()
                try:
                    await self._transmit(client, message, payload, recipients)
                except SMTPServerDisconnected:
                    if not reused:
                        raise
                    # An idle session the server timed out; that says nothing about this email.
                    log.debug("reused SMTP session was closed by the server; reconnecting")
                    _discard(client)
                    client = await self._connect()
                    await self._transmit(client, message, payload, recipients)
            except Exception as exc:
                if client is not None:
                    if _session_usable(exc, client):
                        self._idle.append(client)
                    else:
                        _discard(client)
                raise classify(exc) from exc
            if self._closed:
                _discard(client)
            else:
                self._idle.append(client)

    async def _transmit(
        self,
        client: aiosmtplib.SMTP,
        message: EmailMessage,
        payload: bytes | None,
        recipients: list[str],
    ) -> None:
        if payload is not None:
            await client.sendmail(self._sender, recipients, payload)
        else:
            # Internationalised addresses: let the client negotiate SMTPUTF8.
            await client.send_message(message, sender=self._sender, recipients=recipients)

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(**self._options)  # type: ignore[arg-type]
        await client.connect()
        self.connections_opened += 1
        return client

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.quit(), timeout=2)
            _discard(client)


def _recipients(message: EmailMessage) -> list[str]:
    found: list[str] = []
    for header in message.get_all("To", []):
        # Headers set through the default policy arrive parsed; others are parsed here.
        addresses = getattr(header, "addresses", None)
        if addresses is not None:
            found += [a.addr_spec for a in addresses]
        else:
            found += [address for _, address in getaddresses([str(header)])]
    return found


def _discard(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        client.close()


def _session_usable(exc: BaseException, client: aiosmtplib.SMTP) -> bool:
    if not client.is_connected:
        return False
    if isinstance(exc, SMTPResponseException):
        return exc.code not in _SESSION_ENDING_CODES
    # aiosmtplib resets the envelope (RSET) after a refused recipient list.
    return isinstance(exc, SMTPRecipientsRefused) and all(
        r.code not in _SESSION_ENDING_CODES for r in exc.recipients
    )


def classify(exc: BaseException) -> MailTransientError | MailPermanentError:
    """Transient: no connection, a timeout, a 4xx reply. Permanent: a 5xx reply, or a message the
    client refuses to put on the wire (control characters, unsupported extensions)."""
    if isinstance(exc, MailTransientError | MailPermanentError):
        return exc
    if isinstance(exc, SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        if codes and all(code >= 500 for code in codes):
            return MailPermanentError(f"recipients refused: {text}")
        return MailTransientError(f"recipients deferred: {text}")
    if isinstance(exc, SMTPResponseException):
        text = f"SMTP {exc.code} {exc.message}"
        return MailPermanentError(text) if exc.code >= 500 else MailTransientError(text)
    if isinstance(exc, SMTPNotSupported):
        return MailPermanentError(f"SMTP server cannot take this message: {exc}")
    if isinstance(exc, TimeoutError | ConnectionError | OSError | SMTPException):
        return MailTransientError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ValueError):
        return MailPermanentError(f"message refused by the SMTP client: {exc}")
    return MailTransientError(f"{type(exc).__name__}: {exc}")
