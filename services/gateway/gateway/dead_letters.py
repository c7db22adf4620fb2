"""Dead letters move from the ``<queue>.dlq`` queues into the gateway's database.

There they can be listed with their reason, inspected, replayed to their queue or purged without
juggling messages on the broker. The archive is a subscription of the runtime like any consumer:
a message is acked on its DLQ only after its row is committed, a batch that cannot be stored falls
back to one message at a time, and a dead letter that still cannot be stored is retried and then
parked in ``prs.parked`` — never requeued without a bound. Any AMQP header value can be stored:
types JSON lacks (decimals, timestamps, bytes) are kept in a faithful text form.
"""

from __future__ import annotations

import base64
import functools
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import DeadLetter, Task
from gateway.process_runs import failed_run
from gateway.requeue import reset_to_queued
from gateway.task_events import add_events, requeued_event
from prs_shared.db.upsert import insert_for
from prs_shared.messaging.delivery import Delivery
from prs_shared.messaging.envelope import Envelope, Priority, utcnow
from prs_shared.messaging.headers import (
    ATTEMPT_HEADER,
    ATTEMPTS_HEADER,
    ERROR_HEADER,
    ORIGINAL_QUEUE_HEADER,
    OUTAGE_RETRIES_HEADER,
    OUTAGE_SINCE_HEADER,
    REASON_HEADER,
    int_header,
)
from prs_shared.messaging.messages import TaskStatus
from prs_shared.messaging.outbox import add_raw_to_outbox
from prs_shared.messaging.subscription import Result, RetryHeaders, Scope, Subscription
from prs_shared.messaging.topology import RETRY_QUEUE_HEADER, Topology, declare_work_queue
from prs_shared.tenancy import may_act_on

MAX_TEXT = 10_000
# The archive's own retries must not overwrite the failed task's x-attempt and x-last-error.
ARCHIVE_RETRY_HEADERS = RetryHeaders(attempt="x-archive-attempt", error="x-archive-error")


def _text(value: object, limit: int = MAX_TEXT) -> str:
    # PostgreSQL text refuses NUL; everything else is kept.
    return str(value).replace("\x00", "\ufffd")[:limit]


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON form of any AMQP field value; types JSON lacks become faithful text."""
    if depth > 20:
        return _text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        # JSON integers beyond 64 bits lose precision in most readers: keep their digits.
        return value if abs(value) < 2**63 else str(value)
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8").replace("\x00", "\ufffd")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {_text(k, 200): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, depth + 1) for v in value]
    return _text(repr(value))


def _id(value: object, limit: int) -> str | None:
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    return _text(value, limit)


def to_row(message: AbstractIncomingMessage, dlq_name: str) -> DeadLetter:
    headers = jsonable(dict(message.headers or {}))
    origin = _text(headers.get(ORIGINAL_QUEUE_HEADER) or dlq_name.removesuffix(".dlq"), 200)
    task_id = organization_id = None
    try:
        envelope = json.loads(message.body)
        if isinstance(envelope, dict):
            task_id = envelope.get("task_id")
            organization_id = envelope.get("organization_id")
    except ValueError:
        pass
    reason = headers.get(REASON_HEADER) or _broker_reason(headers) or "unknown"
    error = headers.get(ERROR_HEADER)
    return DeadLetter(
        id=str(uuid.uuid4()),
        message_id=_id(message.message_id, 64),
        queue=origin,
        message_type=_id(message.type, 200),
        task_id=_id(task_id, 36),
        organization_id=_id(organization_id, 200),
        reason=_text(reason, 100),
        attempts=int_header(message.headers, ATTEMPTS_HEADER, 1),
        last_error=_text(error) if error else None,
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


async def archive(deliveries: Sequence[Delivery], scope: Scope) -> list[Result]:
    """Store each dead letter of the batch as a row; a failed housekeeping run is also recorded
    as a run of its process (:mod:`gateway.process_runs`)."""
    for delivery in deliveries:
        row = to_row(delivery.message, delivery.queue)
        scope.session.add(row)
        await _record_failed_run(scope.session, row)
    return [None] * len(deliveries)


async def _record_failed_run(session: AsyncSession, row: DeadLetter) -> None:
    if row.message_type is None or row.message_id is None:
        return
    try:
        envelope = json.loads(row.body)
    except ValueError:
        return
    values = failed_run(
        message_id=row.message_id,
        message_type=row.message_type,
        queue=row.queue,
        envelope=envelope if isinstance(envelope, dict) else {},
        error=row.last_error or row.reason,
        attempts=row.attempts,
        at=row.dead_lettered_at,
    )
    if values is not None:
        stmt = insert_for(session, Task.__table__).values(**values)
        await session.execute(stmt.on_conflict_do_nothing(index_elements=["task_id"]))


async def _declare_dlq(
    channel: AbstractChannel, *, topology: Topology, queue_name: str
) -> AbstractQueue:
    # The work queue's declaration declares and binds its DLQ; the DLQ is also bound to the way
    # back from the delay queues, for the archive's own retries.
    await declare_work_queue(channel, topology, queue_name, [], exchange=topology.commands_exchange)
    dlq = await channel.declare_queue(
        topology.dlq(queue_name), durable=True, arguments=topology.plain_queue_arguments()
    )
    redeliver = await channel.get_exchange(topology.redeliver_exchange, ensure=False)
    await dlq.bind(redeliver, arguments={"x-match": "all", RETRY_QUEUE_HEADER: dlq.name})
    return dlq


def archive_subscriptions(topology: Topology, queue_names: Sequence[str]) -> list[Subscription]:
    """One subscription per DLQ of the platform's queues."""
    return [
        Subscription(
            queue=topology.dlq(name),
            declare=functools.partial(_declare_dlq, topology=topology, queue_name=name),
            work=archive,
            accepts=None,
            batch_size=50,
            batch_wait=0.01,
            # The same message may be dead-lettered again after a replay: no inbox.
            inbox=False,
            announce=False,
            dead_letter_to=("", topology.parked_queue),
            retry_headers=ARCHIVE_RETRY_HEADERS,
            prefetch=100,
        )
        for name in queue_names
    ]


# Headers the archive or the broker added to the failed message; a replay starts without them.
_FAILURE_HEADERS = (
    "x-death",
    ATTEMPTS_HEADER,
    ERROR_HEADER,
    OUTAGE_SINCE_HEADER,
    OUTAGE_RETRIES_HEADER,
    *ARCHIVE_RETRY_HEADERS.__dict__.values(),
)


async def stage_replay(
    session: AsyncSession, row: DeadLetter, *, caller: str | None, by: str | None = None
) -> None:
    """Put a dead letter back on its queue through the outbox, in the caller's transaction.

    The message leaves only once the transaction commits, so the task it names is QUEUED again
    before any worker can report on the replayed run; the registry's forward-only fold then takes
    the replay's events from attempt 1. The dead letter's organization comes from its body, so
    the task it names is reset only if it is the caller's (organization ``caller``) too: a crafted
    message must not reset another organization's task. ``by`` names who replayed it, for the
    task's history.
    """
    headers = {
        k: v
        for k, v in row.headers.items()
        if not k.startswith("x-dead") and k not in _FAILURE_HEADERS
    }
    headers[ATTEMPT_HEADER] = 1
    headers["x-replayed-from"] = row.id
    await add_raw_to_outbox(
        session,
        message_id=(row.message_id or row.id)[:36],
        # Straight to the queue it died in, through the default exchange: the relay's publish is
        # confirmed and mandatory, so a queue that is gone is an error, not a loss.
        exchange="",
        routing_key=row.queue,
        body=row.body,
        headers=headers,
        priority=_priority(row.body),
    )
    row.replayed_at = utcnow()
    task = await session.get(Task, row.task_id) if row.task_id else None
    if (
        task is not None
        and may_act_on(caller, task.organization_id)
        and TaskStatus(task.status).terminal
    ):
        reset_to_queued(task)
        await add_events(session, [requeued_event(task, "replayed", by)])


def _priority(body: bytes) -> int:
    try:
        return Envelope.model_validate_json(body).priority.amqp
    except ValidationError:
        return Priority.MEDIUM.amqp
