"""When a cron expression fires, as pure functions of UTC time.

Expressions are standard five-field cron (``minute hour day-of-month month day-of-week``),
evaluated in UTC by croniter; a sixth field, if given, is seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from croniter import croniter  # type: ignore[import-untyped]  # ships no type information


def _check(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("naive datetime given where UTC is required")
    return at.astimezone(UTC)


def is_valid(expression: str) -> bool:
    return bool(croniter.is_valid(expression))


def next_fire(expression: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that ``expression`` names."""
    fire: datetime = croniter(expression, _check(after)).get_next(datetime)
    return fire.astimezone(UTC)


def latest_fire(expression: str, at: datetime) -> datetime:
    """The last time at or before ``at`` that ``expression`` names (its most recent due time)."""
    # croniter's get_prev is strictly before its start: start one second past ``at`` (cron has
    # whole-second resolution at most), truncated so that a due time equal to ``at`` counts.
    start = _check(at).replace(microsecond=0) + timedelta(seconds=1)
    fire: datetime = croniter(expression, start).get_prev(datetime)
    return fire.astimezone(UTC)
