"""The SMTP adapter (pooled sessions, failure classes) and the file outbox."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path

import pytest

from notifier.adapters.file_outbox import FileOutboxMailer
from notifier.adapters.smtp import SmtpMailer
from notifier.mailer import MailPermanentError, MailTransientError, send_with_retry


def message(n: int, to: str = "sam@acme.example.com") -> EmailMessage:
    m = EmailMessage()
    m["Subject"] = f"hello {n}"
    m["From"] = "PRS <no-reply@prs.example.com>"
    m["To"] = to
    m["Message-ID"] = f"<m-{n}@prs.example.com>"
    m.set_content(f"body {n}")
    return m


def mailer(sink, **options) -> SmtpMailer:
    return SmtpMailer(
        host=sink.host,
        port=sink.port,
        mail_from="PRS <no-reply@prs.example.com>",
        timeout=5,
        **options,
    )


async def test_sequential_sends_reuse_one_connection(smtp_sink) -> None:
    smtp = mailer(smtp_sink, pool_size=4)
    for n in range(10):
        await smtp.send(message(n))
    await smtp.close()
    assert len(smtp_sink.received) == 10
    assert smtp.connections_opened == 1
    assert smtp_sink.handler.sessions == 1


async def test_concurrent_sends_open_at_most_pool_size_connections(smtp_sink) -> None:
    smtp = mailer(smtp_sink, pool_size=3)
    await asyncio.gather(*(smtp.send(message(n)) for n in range(30)))
    await smtp.close()
    assert len(smtp_sink.received) == 30
    assert smtp.connections_opened <= 3


async def test_a_4xx_is_transient_and_a_5xx_permanent(smtp_sink) -> None:
    smtp = mailer(smtp_sink)
    smtp_sink.handler.script = ["451 4.3.0 Try later", "552 5.3.4 Too big"]
    with pytest.raises(MailTransientError, match="451"):
        await smtp.send(message(1))
    with pytest.raises(MailPermanentError, match="552"):
        await smtp.send(message(2))
    await smtp.send(message(3))  # the session is still good after both
    await smtp.close()
    assert [r.message["Subject"] for r in smtp_sink.received] == ["hello 3"]


async def test_a_421_is_retried_inside_the_window_and_delivered_once(smtp_sink) -> None:
    smtp = mailer(smtp_sink)
    smtp_sink.handler.script = ["421 4.3.0 Closing, try again"]
    tries = await send_with_retry(smtp, message(1), attempts=3, window=5, first_wait=0.01)
    await smtp.close()
    assert tries == 2
    assert len(smtp_sink.received) == 1


async def test_a_server_that_is_not_there_is_transient(kit) -> None:
    smtp = SmtpMailer(
        host="127.0.0.1", port=kit.free_port(), mail_from="no-reply@prs.example.com", timeout=2
    )
    with pytest.raises(MailTransientError):
        await smtp.send(message(1))


async def test_the_file_outbox_writes_one_eml_per_message_and_a_resend_replaces_it(
    tmp_path: Path,
) -> None:
    outbox = FileOutboxMailer(tmp_path / "outbox")
    await outbox.send(message(1))
    await outbox.send(message(1))
    await outbox.send(message(2))
    files = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert files == ["m-1@prs.example.com.eml", "m-2@prs.example.com.eml"]
    assert b"Subject: hello 1" in (tmp_path / "outbox" / files[0]).read_bytes()
