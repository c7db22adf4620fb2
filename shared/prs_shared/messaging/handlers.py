"""Handlers are plain async functions ``(payload, ctx) -> result``, mapped by type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from prs_shared.messaging import catalog
from prs_shared.messaging.envelope import Envelope


@dataclass
class HandlerContext:
    """What a handler may use besides its payload: the envelope, the unit of work and an outbox.

    Everything the handler writes through ``session`` and everything it ``emit``s commits in one
    transaction together with the inbox record of this message — or not at all.
    """

    envelope: Envelope
    session: AsyncSession
    service: str
    worker: str
    attempt: int
    queue: str
    staged: list[tuple[Envelope, str | None]] = field(default_factory=list)

    def emit(self, envelope: Envelope, *, queue: str | None = None) -> Envelope:
        """Stage a message; it is published after (and only if) the transaction commits."""
        catalog.lookup(envelope.type)  # unknown types fail here, inside the transaction
        self.staged.append((envelope, queue))
        return envelope

    def caused(self, type_: str, payload: BaseModel | dict[str, Any], **overrides: Any) -> Envelope:
        """Stage a message caused by the one being handled (same correlation id)."""
        return self.emit(self.envelope.caused(type_, payload, **overrides))


Result = dict[str, Any] | None
Handler = Callable[[Any, HandlerContext], Awaitable[Result]]


class HandlerRegistry:
    """Message type → handler, explicit, built in each service's composition root."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, type_: str, handler: Handler) -> None:
        catalog.lookup(type_)
        if type_ in self._handlers:
            raise ValueError(f"a handler for {type_} is registered already")
        self._handlers[type_] = handler

    def get(self, type_: str) -> Handler | None:
        return self._handlers.get(type_)

    def types(self) -> Sequence[str]:
        return sorted(self._handlers)

    def event_types(self) -> Sequence[str]:
        return sorted(t for t in self._handlers if catalog.lookup(t).kind == "event")

    def command_types(self) -> Sequence[str]:
        return sorted(t for t in self._handlers if catalog.lookup(t).kind == "command")
