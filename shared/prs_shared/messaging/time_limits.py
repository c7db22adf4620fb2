"""Soft and hard time limits of a handler, per message type (docs/adr/0009).

- **Soft limit:** the handler's own to honour. It reads ``ctx.deadline`` / ``ctx.time_left()`` /
  ``ctx.soft_limit_reached()`` between steps, or wraps its slow part in ``async with
  ctx.soft_limit():``, which cancels the await in progress at the soft limit and raises
  :class:`SoftTimeLimitExceeded` there, so that the handler can clean up and return what it has,
  or re-raise.
- **Hard limit:** the runtime's. A handler still running at it is cancelled at its current await
  and the delivery fails with :class:`HardTimeLimitExceeded` (reason ``time_limit``): retried with
  backoff, then FAILED and dead-lettered. Work a handler runs in a thread
  (``asyncio.to_thread``) is no longer waited for, but the thread itself runs on.

A limit of 0 is no limit. Which limit a type gets: ``PRS_TIME_LIMITS`` for that type, else the
limit its catalog entry declares, else ``PRS_SOFT_TIME_LIMIT_SECONDS`` /
``PRS_HARD_TIME_LIMIT_SECONDS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from prs_shared.messaging import catalog

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TimeLimit:
    """Seconds a handler may run: ``soft`` is its cue to stop, ``hard`` ends it. 0: none."""

    soft: float
    hard: float

    def __post_init__(self) -> None:
        if self.soft < 0 or self.hard < 0:
            raise ValueError(f"time limits cannot be negative (soft {self.soft}, hard {self.hard})")
        if self.soft and self.hard and self.soft > self.hard:
            raise ValueError(
                f"the soft time limit ({self.soft:g}s) is after the hard one ({self.hard:g}s)"
            )

    @classmethod
    def of(cls, value: Any) -> TimeLimit:
        """From ``[soft, hard]`` (seconds), as settings and catalog entries give it."""
        if isinstance(value, TimeLimit):
            return value
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            raise ValueError(f"expected [soft seconds, hard seconds], got {value!r}")
        return cls(float(value[0]), float(value[1]))


class TimeLimitExceeded(TimeoutError):
    """A handler ran past one of its time limits; settled with reason ``time_limit``."""

    reason: ClassVar[str] = "time_limit"
    """The dead-letter reason."""
    error_label: ClassVar[str] = reason
    """How its error text starts (see ``headers.error_text``): ``time_limit: ...``."""
    kind: ClassVar[str] = "time"

    def __init__(self, seconds: float, delivery: object | None = None) -> None:
        super().__init__(f"{self.kind} time limit of {seconds:g}s exceeded")
        self.seconds = seconds
        self.delivery = delivery
        """The delivery whose handler ran over (set by the runtime), so that a batch can fail
        it alone instead of running it again."""


class SoftTimeLimitExceeded(TimeLimitExceeded):
    """Raised inside ``async with ctx.soft_limit():`` at the soft limit; catch it to clean up."""

    kind: ClassVar[str] = "soft"


class HardTimeLimitExceeded(TimeLimitExceeded):
    """The runtime stopped a handler that was still running at its hard limit."""

    kind: ClassVar[str] = "hard"


NO_LIMIT = TimeLimit(0.0, 0.0)


class TimeLimits:
    """Every message type's time limit, resolved once per type."""

    def __init__(
        self, default: TimeLimit = NO_LIMIT, overrides: Mapping[str, TimeLimit] | None = None
    ) -> None:
        self.default = default
        self._overrides = dict(overrides or {})
        self._resolved: dict[str, TimeLimit] = {}
        catalog.load_all()  # every declared limit known before the first lookup

    def for_type(self, type_: str) -> TimeLimit:
        found = self._resolved.get(type_)
        if found is None:
            found = self._overrides.get(type_) or self._declared(type_) or self.default
            self._resolved[type_] = found
        return found

    @staticmethod
    def _declared(type_: str) -> TimeLimit | None:
        try:
            declared = catalog.lookup(type_).time_limit
        except catalog.UnknownMessageType:
            return None
        return None if declared is None else TimeLimit.of(declared)


def parse_overrides(raw: Mapping[str, Any]) -> dict[str, TimeLimit]:
    """``{"file.process": [60, 90]}`` → limits by type; ValueError names what is wrong."""
    known = {spec.type for spec in catalog.load_all()}
    limits: dict[str, TimeLimit] = {}
    for type_, value in raw.items():
        if type_ not in known:
            raise ValueError(f"{type_!r} is not a message type")
        try:
            limits[type_] = TimeLimit.of(value)
        except ValueError as exc:
            raise ValueError(f"{type_}: {exc}") from None
    return limits


async def within_hard_limit(
    limit: TimeLimit, awaitable: Awaitable[T], delivery: object | None = None
) -> T:
    """Await ``awaitable``, cancelled at ``limit.hard`` seconds (HardTimeLimitExceeded)."""
    if not limit.hard:
        return await awaitable
    scope = asyncio.timeout(limit.hard)
    try:
        async with scope:
            return await awaitable
    except Exception as exc:
        # Only our own expiry is a time limit: a handler's own TimeoutError stays what it is.
        if scope.expired():
            raise HardTimeLimitExceeded(limit.hard, delivery) from exc
        raise
