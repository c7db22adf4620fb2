"""Every message type the platform knows: one source of truth for schemas and routing.

Commands are imperative, have one handler and carry a ``task_id``; events are past tense and any
number of services may subscribe. Services register their own payload models here at import time
through :func:`register`, so the catalog (and the AsyncAPI document built from it) is complete
whenever ``prs_shared.messaging.types`` has been imported.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Generic, Literal

from pydantic import BaseModel
from typing_extensions import TypeVar

from prs_shared.messaging.envelope import MessageKind

QueueName = Literal[
    "notifications",
    "workflow",
    "auth",
    "file_processing",
    "business_processes",
    "system",
    "reports",
    "monitoring",
    "maintenance",
]

COMMAND_QUEUES: tuple[QueueName, ...] = (
    "workflow",
    "auth",
    "file_processing",
    "business_processes",
    "system",
    "reports",
    "monitoring",
    "maintenance",
    "notifications",
)


P = TypeVar("P", bound=BaseModel, default=BaseModel)
P_co = TypeVar("P_co", bound=BaseModel, covariant=True, default=BaseModel)


@dataclass(frozen=True)
class MessageSpec(Generic[P_co]):
    """How one message type is shaped and routed; ``P_co`` is its payload model."""

    type: str
    kind: MessageKind
    payload: builtins.type[P_co]
    description: str
    queue: QueueName | None = None
    """For commands: the queue it goes to unless the sender names another."""
    max_retries: int | None = None
    """For commands: overrides the service's default retry limit."""
    amqp_priority: int | None = None
    """Fixed AMQP priority (control commands); otherwise the envelope's priority decides."""
    time_limit: tuple[float, float] | None = None
    """(soft, hard) seconds its handler may run; None: the service's default (see
    :mod:`prs_shared.messaging.time_limits`). ``PRS_TIME_LIMITS`` overrides it."""


class UnknownMessageType(KeyError):
    """No catalog entry for a message type."""


_CATALOG: dict[str, MessageSpec[Any]] = {}


def register(spec: MessageSpec[P]) -> MessageSpec[P]:
    if spec.kind == "command" and spec.queue is None:
        raise ValueError(f"command {spec.type} needs a queue")
    existing = _CATALOG.get(spec.type)
    if existing is not None and existing != spec:
        raise ValueError(f"message type {spec.type} registered twice with different specs")
    _CATALOG[spec.type] = spec
    return spec


def command(
    type_: str,
    payload: type[P],
    queue: QueueName,
    description: str,
    *,
    max_retries: int | None = None,
    time_limit: tuple[float, float] | None = None,
) -> MessageSpec[P]:
    return register(
        MessageSpec(
            type_, "command", payload, description, queue, max_retries, time_limit=time_limit
        )
    )


def event(
    type_: str,
    payload: type[P],
    description: str,
    *,
    time_limit: tuple[float, float] | None = None,
) -> MessageSpec[P]:
    return register(MessageSpec(type_, "event", payload, description, time_limit=time_limit))


def lookup(type_: str) -> MessageSpec[Any]:
    try:
        return _CATALOG[type_]
    except KeyError:
        raise UnknownMessageType(type_) from None


def all_specs() -> list[MessageSpec[Any]]:
    return sorted(_CATALOG.values(), key=lambda s: s.type)


CATALOG_MODULES = (
    "prs_shared.messaging.messages",
    "prs_shared.messaging.prs_events",
    "prs_shared.messaging.deals",
    "prs_shared.messaging.notifications",
    "prs_shared.messaging.files",
    "prs_shared.messaging.webhooks",
    "prs_shared.messaging.schedule",
    "prs_shared.messaging.housekeeping",
)


def load_all() -> list[MessageSpec[Any]]:
    """Import every catalog module, so that every message type is known; return the specs."""
    import importlib

    for module in CATALOG_MODULES:
        importlib.import_module(module)
    return all_specs()
