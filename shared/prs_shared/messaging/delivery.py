"""Decoding: from an AMQP delivery to a :class:`Delivery` fit to be handled, or a rejection.

Nothing here touches the database or the broker; a rejected delivery is dead-lettered by the
settler with the reason this module names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from pydantic import BaseModel, ValidationError

from prs_shared.logging import bind_context
from prs_shared.messaging import catalog
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.headers import attempt_of


@dataclass(slots=True)
class Delivery:
    """One delivery of a subscription, decoded.

    On envelope subscriptions ``envelope`` and ``payload`` (the validated payload model) are set;
    on raw subscriptions (the dead-letter archive) both are None and handlers read ``message``.
    """

    queue: str
    message: AbstractIncomingMessage
    attempt: int
    envelope: Envelope | None = None
    payload: BaseModel | None = None

    @property
    def key(self) -> str:
        """What identifies this message across redeliveries: the inbox and crash-count key."""
        if self.envelope is not None:
            return str(self.envelope.id)
        if self.message.message_id:
            return str(self.message.message_id)[:200]
        return "sha256:" + hashlib.sha256(self.message.body).hexdigest()

    @property
    def redelivered(self) -> bool:
        """The broker handed this out before and it was never settled: its worker died or lost
        the connection while holding it."""
        return bool(self.message.redelivered)

    @property
    def task_id(self) -> Any:
        return self.envelope.task_id if self.envelope is not None else None

    @property
    def type(self) -> str:
        if self.envelope is not None:
            return self.envelope.type
        return str(self.message.type or "unknown")[:200]

    def bind_log_context(self) -> None:
        if self.envelope is not None:
            bind_context(
                correlation_id=self.envelope.correlation_id,
                task_id=self.envelope.task_id,
                message_type=self.envelope.type,
            )


class Rejected(Exception):
    """The delivery cannot be handled at all; ``reason`` names why for the dead-letter headers."""

    def __init__(self, reason: str, error: Exception, envelope: Envelope | None = None) -> None:
        super().__init__(str(error))
        self.reason = reason
        self.error = error
        self.envelope = envelope


def decode_raw(queue: str, message: AbstractIncomingMessage) -> Delivery:
    return Delivery(queue, message, attempt_of(message.headers))


def decode_envelope(
    queue: str, message: AbstractIncomingMessage, accepted: Collection[str], service: str
) -> Delivery:
    """Parse the envelope, check its type is one this subscription handles, validate its payload."""
    attempt = attempt_of(message.headers)
    try:
        envelope = Envelope.model_validate_json(message.body)
    except ValidationError as exc:
        raise Rejected("invalid_envelope", exc) from None
    if envelope.type not in accepted:
        known = "not in the catalog"
        try:
            catalog.lookup(envelope.type)
            known = f"not handled by {service}"
        except catalog.UnknownMessageType:
            pass
        error = ValueError(f"unknown message type {envelope.type!r}: {known}")
        raise Rejected("unknown_type", error, envelope)
    spec = catalog.lookup(envelope.type)
    try:
        payload = spec.payload.model_validate(envelope.payload)
    except ValidationError as exc:
        raise Rejected("schema_mismatch", exc, envelope) from None
    return Delivery(queue, message, attempt, envelope, payload)
