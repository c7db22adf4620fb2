"""Delivers pending webhook deliveries in the background, with backoff, logging every attempt.

Deliveries are their own pipeline rather than part of an event's handler: a customer's endpoint
being down for an hour must not hold up emails, and an endpoint deserves retries over hours, not
the seconds a message's retry path spans. Each pass claims due rows with a short lease (so
several notifier processes share the work), posts them concurrently and records the outcome.
Delivery is at least once; ``X-PRS-Delivery`` lets a receiver drop a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import or_, select, update

from notifier import signing
from notifier.adapters.webhook_client import UnsafeEndpoint
from notifier.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifier.webhook_service import DELIVERED, FAILED, PENDING
from prs_shared.db.engine import SessionFactory
from prs_shared.messaging.backoff import retry_delay

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Answers that say the endpoint is gone for good; anything else non-2xx is retried.
GONE = frozenset({410})


class WebhookSender(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Attempt:
    delivery_id: str
    status_code: int | None
    error: str | None
    duration_ms: float
    retry: bool


class WebhookDispatcher:
    def __init__(
        self,
        sessions: SessionFactory,
        sender: WebhookSender,
        *,
        clock: Clock,
        max_attempts: int = 8,
        base_delay: float = 5.0,
        max_delay: float = 3600.0,
        poll_interval: float = 1.0,
        lease: float = 60.0,
        batch_size: int = 50,
    ) -> None:
        self._sessions = sessions
        self._sender = sender
        self._clock = clock
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._poll_interval = poll_interval
        self._lease = timedelta(seconds=lease)
        self._batch_size = batch_size
        self._stopping = False
        self._wake = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping:
            try:
                done = await self.dispatch_once()
            except Exception:
                log.exception("webhook dispatch pass failed; retrying")
                done = 0
            if done >= self._batch_size:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def dispatch_once(self) -> int:
        """Attempt every due delivery once; returns how many were attempted."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            due = (
                await session.scalars(
                    select(WebhookDelivery)
                    .where(
                        WebhookDelivery.status == PENDING,
                        WebhookDelivery.next_attempt_at <= now,
                        or_(
                            WebhookDelivery.locked_until.is_(None),
                            WebhookDelivery.locked_until < now,
                        ),
                    )
                    .order_by(WebhookDelivery.next_attempt_at)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not due:
                return 0
            for delivery in due:
                delivery.locked_until = now + self._lease
            endpoint_ids = {d.endpoint_id for d in due}
            endpoints = {
                e.id: e
                for e in (
                    await session.scalars(
                        select(WebhookEndpoint).where(WebhookEndpoint.id.in_(endpoint_ids))
                    )
                ).all()
            }
            work = [
                (d.id, d.attempts, d.event_type, d.body, endpoints.get(d.endpoint_id)) for d in due
            ]
        attempts = await asyncio.gather(*(self._attempt(*item) for item in work))
        await self._record(attempts, {item[0]: item[1] for item in work})
        return len(attempts)

    async def _attempt(
        self,
        delivery_id: str,
        attempts_before: int,
        event_type: str,
        body: str,
        endpoint: WebhookEndpoint | None,
    ) -> Attempt:
        if endpoint is None or not endpoint.active:
            return Attempt(delivery_id, None, "endpoint removed or inactive", 0.0, retry=False)
        raw = body.encode()
        timestamp = int(self._clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            signing.TIMESTAMP_HEADER: str(timestamp),
            signing.SIGNATURE_HEADER: signing.signature(endpoint.secret, timestamp, raw),
            signing.EVENT_HEADER: event_type,
            signing.DELIVERY_HEADER: delivery_id,
        }
        started = time.perf_counter()
        try:
            status = await self._sender.post(endpoint.url, raw, headers)
        except UnsafeEndpoint as exc:
            elapsed = (time.perf_counter() - started) * 1000
            return Attempt(delivery_id, None, f"refused: {exc}", elapsed, retry=False)
        except Exception as exc:
            elapsed = (time.perf_counter() - started) * 1000
            return Attempt(delivery_id, None, f"{type(exc).__name__}: {exc}", elapsed, retry=True)
        elapsed = (time.perf_counter() - started) * 1000
        if 200 <= status < 300:
            return Attempt(delivery_id, status, None, elapsed, retry=False)
        return Attempt(delivery_id, status, f"HTTP {status}", elapsed, retry=status not in GONE)

    async def _record(self, attempts: list[Attempt], before: dict[str, int]) -> None:
        now = self._clock()
        async with self._sessions() as session, session.begin():
            for attempt in attempts:
                number = before[attempt.delivery_id] + 1
                session.add(
                    WebhookAttempt(
                        delivery_id=attempt.delivery_id,
                        attempt=number,
                        at=now,
                        status_code=attempt.status_code,
                        error=attempt.error,
                        duration_ms=attempt.duration_ms,
                    )
                )
                values: dict[str, object] = {
                    "attempts": number,
                    "locked_until": None,
                    "last_status_code": attempt.status_code,
                    "last_error": attempt.error,
                }
                if attempt.error is None:
                    values.update(status=DELIVERED, delivered_at=now)
                elif attempt.retry and number < self._max_attempts:
                    delay = retry_delay(number, base=self._base_delay, cap=self._max_delay)
                    values["next_attempt_at"] = now + timedelta(seconds=delay)
                else:
                    values["status"] = FAILED
                    log.warning(
                        "webhook delivery %s failed after %d attempt(s): %s",
                        attempt.delivery_id,
                        number,
                        attempt.error,
                    )
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == attempt.delivery_id)
                    .values(**values)
                )
