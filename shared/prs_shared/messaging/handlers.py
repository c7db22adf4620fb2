"""Handlers: plain async functions ``(payload, ctx, deps) -> result``, declared in one list.

A service's handlers are a list of :class:`Handler` declarations in its composition root, one
per message type: the catalog entry (and so the payload model the function takes), the function,
and what it needs besides its message (``None`` when nothing). The runtime validates each
envelope's payload into the catalog entry's model before the handler is called; a payload that
does not validate is dead-lettered with the validation error as its cause.

A fold that takes a whole batch at once (the gateway's task registry) is declared the same way
with :class:`BatchHandler`: its function takes every message of its types in the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from typing_extensions import TypeVar

from prs_shared.messaging import catalog
from prs_shared.messaging.catalog import MessageSpec
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.time_limits import NO_LIMIT, SoftTimeLimitExceeded, TimeLimit

P = TypeVar("P", bound=BaseModel)
D = TypeVar("D")


@dataclass
class HandlerContext:
    """What a handler may use besides its payload: the envelope, the unit of work and an outbox.

    Everything the handler writes through ``session`` and everything it ``emit``s commits in one
    transaction together with the inbox record of this message — or not at all.

    A handler that can stop early honours its soft time limit through ``deadline``,
    :meth:`time_left`, :meth:`soft_limit_reached` or :meth:`soft_limit`; the hard limit is the
    runtime's (:mod:`prs_shared.messaging.time_limits`).
    """

    envelope: Envelope
    session: AsyncSession
    service: str
    worker: str
    attempt: int
    queue: str
    staged: list[tuple[Envelope, str | None]] = field(default_factory=list)
    time_limit: TimeLimit = NO_LIMIT
    deadline: float | None = None
    """Event-loop time (``loop.time()``) of the soft limit; None without one."""

    def time_left(self) -> float | None:
        """Seconds until the soft limit (negative past it); None without one."""
        if self.deadline is None:
            return None
        return self.deadline - asyncio.get_running_loop().time()

    def soft_limit_reached(self) -> bool:
        left = self.time_left()
        return left is not None and left <= 0

    @contextlib.asynccontextmanager
    async def soft_limit(self) -> AsyncIterator[None]:
        """At the soft limit, cancel the await in progress and raise SoftTimeLimitExceeded here.

        Catch it around the block to clean up and return a partial result, or let it go: the
        delivery then fails with reason ``time_limit``.
        """
        if self.deadline is None:
            yield
            return
        scope = asyncio.timeout_at(self.deadline)
        try:
            async with scope:
                yield
        except TimeoutError as exc:
            if scope.expired():
                raise SoftTimeLimitExceeded(self.time_limit.soft) from exc
            raise

    def emit(self, envelope: Envelope, *, queue: str | None = None) -> Envelope:
        """Stage a message; it is published after (and only if) the transaction commits."""
        catalog.lookup(envelope.type)  # unknown types fail here, inside the transaction
        self.staged.append((envelope, queue))
        return envelope

    def caused(self, type_: str, payload: BaseModel | dict[str, Any], **overrides: Any) -> Envelope:
        """Stage a message caused by the one being handled (same correlation id)."""
        return self.emit(self.envelope.caused(type_, payload, **overrides))


HandlerResult = BaseModel | Mapping[str, Any] | None
"""What a handler returns: a result model, a JSON object, or nothing."""

Result = dict[str, Any] | None
"""A result as stored in the inbox and announced with the task's outcome."""


def as_result(value: HandlerResult) -> Result:
    """The stored form of a handler's result: a model becomes its JSON object."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return dict(value)


@dataclass(frozen=True)
class Handler(Generic[P, D]):
    """One line of a service's handler table: ``Handler(CATALOG_ENTRY, function, deps)``.

    mypy checks that ``function`` takes the entry's payload model and ``deps``'s type.
    """

    message: MessageSpec[P]
    fn: Callable[[P, HandlerContext, D], Awaitable[HandlerResult]]
    deps: D

    def __post_init__(self) -> None:
        if catalog.lookup(self.message.type) != self.message:
            raise ValueError(f"{self.message.type}: not the catalog's entry for this type")

    @property
    def name(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))

    async def __call__(self, payload: BaseModel, ctx: HandlerContext) -> Result:
        """Run the handler on a payload decoded with its catalog entry."""
        if not isinstance(payload, self.message.payload):
            raise TypeError(
                f"{self.name} takes {self.message.payload.__name__}, not {type(payload).__name__}"
            )
        return as_result(await self.fn(payload, ctx, self.deps))


class HandlerRegistry:
    """A service's handlers by message type, built from its list of declarations."""

    def __init__(self, handlers: Iterable[Handler[Any, Any]]) -> None:
        self._handlers: dict[str, Handler[Any, Any]] = {}
        for handler in handlers:
            type_ = handler.message.type
            if type_ in self._handlers:
                raise ValueError(
                    f"{type_} has two handlers: {self._handlers[type_].name}, {handler.name}"
                )
            self._handlers[type_] = handler

    def get(self, type_: str) -> Handler[Any, Any] | None:
        return self._handlers.get(type_)

    def types(self) -> Sequence[str]:
        return sorted(self._handlers)

    def event_types(self) -> Sequence[str]:
        return sorted(t for t, h in self._handlers.items() if h.message.kind == "event")

    def command_types(self) -> Sequence[str]:
        return sorted(t for t, h in self._handlers.items() if h.message.kind == "command")


@dataclass(frozen=True, slots=True)
class Item(Generic[P]):
    """One message of a batch, as a batch handler sees it."""

    envelope: Envelope
    payload: P


@dataclass(frozen=True)
class BatchHandler(Generic[P, D]):
    """``BatchHandler((CATALOG_ENTRY, ...), function, deps)``: one call per batch.

    ``function`` gets the batch's messages of these types, in delivery order, and the batch's
    session; for folds that are cheaper, or only safe, as one statement per batch.
    """

    messages: tuple[MessageSpec[P], ...]
    fn: Callable[[Sequence[Item[P]], AsyncSession, D], Awaitable[None]]
    deps: D

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("a batch handler takes at least one message type")
        for spec in self.messages:
            if catalog.lookup(spec.type) != spec:
                raise ValueError(f"{spec.type}: not the catalog's entry for this type")

    @property
    def name(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))

    def item(self, envelope: Envelope, payload: BaseModel) -> Item[P]:
        """The message as this handler takes it, its payload decoded with its catalog entry."""
        for spec in self.messages:
            if spec.type == envelope.type and isinstance(payload, spec.payload):
                return Item(envelope, payload)
        raise TypeError(f"{self.name} does not take {envelope.type} ({type(payload).__name__})")

    async def __call__(self, items: Sequence[Item[P]], session: AsyncSession) -> None:
        await self.fn(items, session, self.deps)


class BatchHandlerRegistry:
    """A subscription's batch handlers by message type, from its list of declarations."""

    def __init__(self, handlers: Iterable[BatchHandler[Any, Any]]) -> None:
        self._handlers = list(handlers)
        self._by_type: dict[str, BatchHandler[Any, Any]] = {}
        for handler in self._handlers:
            for spec in handler.messages:
                if spec.type in self._by_type:
                    raise ValueError(
                        f"{spec.type} has two handlers: {self._by_type[spec.type].name}, "
                        f"{handler.name}"
                    )
                self._by_type[spec.type] = handler

    def types(self) -> Sequence[str]:
        return sorted(self._by_type)

    async def run(
        self, messages: Sequence[tuple[Envelope, BaseModel]], session: AsyncSession
    ) -> None:
        """Each handler once, with its messages of the batch, in the order they are listed."""
        items: dict[int, list[Item[Any]]] = {id(h): [] for h in self._handlers}
        for envelope, payload in messages:
            handler = self._by_type[envelope.type]
            items[id(handler)].append(handler.item(envelope, payload))
        for handler in self._handlers:
            if mine := items[id(handler)]:
                await handler(mine, session)
