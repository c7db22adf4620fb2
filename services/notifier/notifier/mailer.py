"""The port every email backend implements, how its failures are told apart, and the short
in-delivery retry around it."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Protocol

from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)


class MailTransientError(Exception):
    """Worth another try: the server was unreachable, slow, or answered 4xx."""


class MailPermanentError(Exception):
    """Retrying cannot help: the server answered 5xx, or the message itself is unacceptable."""


class Mailer(Protocol):
    """Delivers one built email to the addresses in its ``To`` header.

    Raises :class:`MailTransientError` or :class:`MailPermanentError`; returning means the
    backend took responsibility for the message (an SMTP 250 to DATA, a file written).
    """

    async def send(self, message: EmailMessage) -> None: ...

    async def close(self) -> None: ...


async def send_with_retry(
    mailer: Mailer, message: EmailMessage, *, attempts: int, window: float, first_wait: float = 0.2
) -> int:
    """Send, retrying transient failures with jittered backoff inside a short window.

    Returns how many tries it took. The last transient error propagates, so the message goes to
    the platform's retry path (delay queues, not a sleeping consumer) once the window is spent.
    """
    tries = 0
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(MailTransientError),
        stop=stop_after_attempt(attempts) | stop_after_delay(window),
        wait=wait_exponential_jitter(multiplier=first_wait, max=max(first_wait, window / 4)),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    ):
        with attempt:
            tries += 1
            await mailer.send(message)
    return tries
