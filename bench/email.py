"""Email throughput: the notifier's pooled SMTP adapter against a connection per message.

Both sides send the same messages with the same concurrency to a local SMTP sink (aiosmtpd in its
own process, so it does not compete for this process's interpreter lock). The pooled side is the
notifier's :class:`~notifier.adapters.smtp.SmtpMailer` as the service builds it (default pool
size); the baseline is ``aiosmtplib.send``, which connects, greets, sends and quits per message.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from notifier.adapters.smtp import SmtpMailer
from notifier.rendering import Recipient, Renderer, build_email
from notifier.settings import NotifierSettings
from prs_shared.messaging.notifications import NotificationType

HOST = "127.0.0.1"
CONCURRENCY = 16
ROUNDS = 5
SENDER = "PRS <no-reply@prs.example.com>"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _messages(n: int) -> list[EmailMessage]:
    """What the notifier sends: its own templates and message builder, one email per person."""
    renderer = Renderer()
    now = datetime.now(UTC)
    messages = []
    for i in range(n):
        address = f"user{i % 50}@acme.example.com"
        rendered = renderer.render(
            NotificationType.VERIFICATION_APPROVED,
            {
                "kind": "verification_approved",
                "org_name": "Acme Receivables",
                "recipient_name": f"User {i % 50}",
                "recipient_email": address,
                "deal_id": f"D-{i}",
                "data": {"client_name": f"Client {i}", "value": "1200.00", "currency": "USD"},
                "password_expires_at": None,
                "report_url": None,
            },
        )
        messages.append(
            build_email(
                rendered,
                mail_from=SENDER,
                recipient=Recipient(address, f"User {i % 50}"),
                message_id=f"<bench-{i}@prs.example.com>",
                sent_at=now,
                kind=NotificationType.VERIFICATION_APPROVED,
            )
        )
    return messages


async def _wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError(f"SMTP sink did not listen on {HOST}:{port}")


async def _rate(n: int, send: Callable[[EmailMessage], Awaitable[Any]]) -> float:
    messages = _messages(n)
    queue: asyncio.Queue[EmailMessage] = asyncio.Queue()
    for message in messages:
        queue.put_nowait(message)

    async def worker() -> None:
        while not queue.empty():
            await send(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return n / (time.perf_counter() - started)


async def run_email_bench(n: int) -> dict[str, Any]:
    """Emails per second, pooled adapter versus a connection per message, and their ratio."""
    port = _free_port()
    sink = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiosmtpd",
        "-n",
        "-l",
        f"{HOST}:{port}",
        "-c",
        "aiosmtpd.handlers.Sink",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await _wait_for_port(port)
        pool_size = NotifierSettings.model_fields["smtp_pool_size"].default
        mailer = SmtpMailer(host=HOST, port=port, mail_from=SENDER, timeout=30, pool_size=pool_size)

        async def per_connection(message: EmailMessage) -> Any:
            return await aiosmtplib.send(message, hostname=HOST, port=port, timeout=30)

        warmup = max(20, min(200, n // 20))
        await _rate(warmup, mailer.send)
        await _rate(warmup, per_connection)
        # Rounds alternate the order (A-B, B-A, ...) so neither side always runs on a warmer or
        # busier machine; the median of the per-round ratios resists a noisy neighbour.
        per_round = max(50, n // ROUNDS)
        pooled_rates: list[float] = []
        baseline_rates: list[float] = []
        for round_ in range(ROUNDS):
            if round_ % 2 == 0:
                pooled_rates.append(await _rate(per_round, mailer.send))
                baseline_rates.append(await _rate(per_round, per_connection))
            else:
                baseline_rates.append(await _rate(per_round, per_connection))
                pooled_rates.append(await _rate(per_round, mailer.send))
        connections = mailer.connections_opened
        await mailer.close()
    finally:
        sink.terminate()
        try:
            await asyncio.wait_for(sink.wait(), timeout=10)
        except TimeoutError:
            sink.kill()
            await sink.wait()
    pooled = statistics.median(pooled_rates)
    baseline = statistics.median(baseline_rates)
    ratio = statistics.median(p / b for p, b in zip(pooled_rates, baseline_rates, strict=True))
    return {
        "n": n,
        "concurrency": CONCURRENCY,
        "pool_size": pool_size,
        "pooled_emails_per_s": round(pooled, 1),
        "per_connection_emails_per_s": round(baseline, 1),
        "ratio": round(ratio, 2),
        "pooled_connections_opened": connections,
        "method": (
            "aiosmtpd Sink in a subprocess on 127.0.0.1; the same multipart messages sent by "
            f"{CONCURRENCY} concurrent senders; {ROUNDS} alternating rounds of n/{ROUNDS} each, "
            "medians of the rates and of the per-round ratios"
        ),
    }
