"""Calendar rules of the business processes."""

from __future__ import annotations

from datetime import date, datetime, timedelta

REMINDER_AFTER = timedelta(hours=24)
"""A deal waiting longer than this for verification is reminded about."""


def pending_too_long(pending_since: datetime, now: datetime) -> bool:
    return now - pending_since > REMINDER_AFTER


def period_of(day: date) -> str:
    """The overdue announcement period a day falls in: its month, ``2026-11``."""
    return f"{day.year:04d}-{day.month:02d}"
