"""Dead letters move from the ``<queue>.dlq`` queues into the gateway's database.

There they can be listed with their reason, inspected, replayed to their queue or purged without
juggling messages on the broker. A message is acked on its DLQ only after its row is committed,
so none is lost (a crash between the commit and the ack stores one twice; replaying both is
harmless, as consumers absorb duplicates through their inbox).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from gateway.models import DeadLetter
from prs_shared.db.engine import SessionFactory
from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.runtime import (
    ATTEMPTS_HEADER,
    ERROR_HEADER,
    ORIGINAL_QUEUE_HEADER,
    REASON_HEADER,
)
from prs_shared.messaging.topology import Topology, declare_work_queue

log = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def to_row(message: AbstractIncomingMessage, dlq_name: str) -> DeadLetter:
    headers = _jsonable(dict(message.headers or {}))
    origin = str(headers.get(ORIGINAL_QUEUE_HEADER) or dlq_name.removesuffix(".dlq"))
    task_id = organization_id = None
    try:
        envelope = json.loads(message.body)
        task_id = envelope.get("task_id")
        organization_id = envelope.get("organization_id")
    except (ValueError, AttributeError):
        pass
    reason = str(headers.get(REASON_HEADER) or _broker_reason(headers) or "unknown")
    attempts = headers.get(ATTEMPTS_HEADER)
    return DeadLetter(
        id=str(uuid.uuid4()),
        message_id=message.message_id,
        queue=origin,
        message_type=message.type,
        task_id=str(task_id) if task_id else None,
        organization_id=str(organization_id) if organization_id else None,
        reason=reason[:100],
        attempts=int(attempts)
        if isinstance(attempts, int | str) and str(attempts).isdigit()
        else 1,
        last_error=str(headers.get(ERROR_HEADER)) if headers.get(ERROR_HEADER) else None,
        headers=headers,
        body=message.body,
        dead_lettered_at=utcnow(),
    )


def _broker_reason(headers: dict[str, Any]) -> str | None:
    # Dead-lettered by the broker itself (rejected, expired, over length): it says why in x-death.
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        return f"broker_{deaths[0].get('reason', 'rejected')}"
    return None


class DeadLetterArchive:
    """Consumes every DLQ of the platform into the ``dead_letters`` table."""

    def __init__(
        self,
        connection: AbstractConnection,
        topology: Topology,
        sessions: SessionFactory,
        queue_names: Sequence[str],
    ) -> None:
        self._connection = connection
        self._topology = topology
        self._sessions = sessions
        self._queue_names = queue_names
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=50)
        self._channel = channel
        for name in self._queue_names:
            # The work queue's declaration declares and binds its DLQ too.
            await declare_work_queue(
                channel, self._topology, name, [], exchange=self._topology.commands_exchange
            )
            dlq = await channel.declare_queue(self._topology.dlq(name), durable=True)
            await dlq.consume(self._archive(dlq.name))

    async def stop(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    def _archive(self, dlq_name: str) -> Any:
        async def on_message(message: AbstractIncomingMessage) -> None:
            row = to_row(message, dlq_name)
            try:
                async with self._lock, self._sessions() as session, session.begin():
                    session.add(row)
            except Exception:
                log.exception("could not archive a dead letter; it stays in %s", dlq_name)
                await message.nack(requeue=True)
                await asyncio.sleep(1)
                return
            await message.ack()

        return on_message
