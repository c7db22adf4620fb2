"""When cron expressions fire: a table of cases, and the laws that tie next and latest fire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.firing import latest_fire, next_fire
from scheduler.jobs import JOBS


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


DAILY_MIDNIGHT = "0 0 * * *"
EVERY_6_HOURS = "0 */6 * * *"
SUNDAYS = "0 0 * * 0"
DAILY_1AM = "0 1 * * *"
EVERY_5_MINUTES = "*/5 * * * *"
HOURLY = "0 * * * *"


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        (DAILY_MIDNIGHT, utc(2026, 3, 4, 13, 45), utc(2026, 3, 5)),
        (DAILY_MIDNIGHT, utc(2026, 3, 4), utc(2026, 3, 5)),
        (DAILY_MIDNIGHT, utc(2026, 3, 4, 23, 59, 59, 999999), utc(2026, 3, 5)),
        (EVERY_6_HOURS, utc(2026, 3, 4, 5, 59, 59), utc(2026, 3, 4, 6)),
        (EVERY_6_HOURS, utc(2026, 3, 4, 6), utc(2026, 3, 4, 12)),
        (EVERY_6_HOURS, utc(2026, 3, 4, 18, 0, 1), utc(2026, 3, 5)),
        (SUNDAYS, utc(2026, 3, 4, 9), utc(2026, 3, 8)),
        (SUNDAYS, utc(2026, 3, 8), utc(2026, 3, 15)),
        (SUNDAYS, utc(2026, 3, 7, 23, 59, 59), utc(2026, 3, 8)),
        (DAILY_1AM, utc(2026, 3, 4, 0, 59), utc(2026, 3, 4, 1)),
        (DAILY_1AM, utc(2026, 3, 4, 1), utc(2026, 3, 5, 1)),
        (EVERY_5_MINUTES, utc(2026, 3, 4, 10, 2, 30), utc(2026, 3, 4, 10, 5)),
        (EVERY_5_MINUTES, utc(2026, 3, 4, 10, 5), utc(2026, 3, 4, 10, 10)),
        (HOURLY, utc(2026, 12, 31, 23, 30), utc(2027, 1, 1)),
        ("0 0 29 2 *", utc(2026, 3, 1), utc(2028, 2, 29)),
        ("0 0 31 * *", utc(2026, 4, 1), utc(2026, 5, 31)),
    ],
)
def test_next_fire_is_the_first_time_strictly_after(
    expression: str, after: datetime, expected: datetime
) -> None:
    assert next_fire(expression, after) == expected


@pytest.mark.parametrize(
    ("expression", "at", "expected"),
    [
        (DAILY_MIDNIGHT, utc(2026, 3, 4), utc(2026, 3, 4)),
        (DAILY_MIDNIGHT, utc(2026, 3, 4, 0, 0, 0, 500000), utc(2026, 3, 4)),
        (DAILY_MIDNIGHT, utc(2026, 3, 3, 23, 59, 59, 999999), utc(2026, 3, 3)),
        (EVERY_6_HOURS, utc(2026, 3, 4, 17, 59), utc(2026, 3, 4, 12)),
        (SUNDAYS, utc(2026, 3, 4, 9), utc(2026, 3, 1)),
        (SUNDAYS, utc(2026, 3, 8, 0, 0, 30), utc(2026, 3, 8)),
        (DAILY_1AM, utc(2026, 3, 4, 0, 59, 59), utc(2026, 3, 3, 1)),
        (EVERY_5_MINUTES, utc(2026, 3, 4, 10, 4, 59), utc(2026, 3, 4, 10)),
        (HOURLY, utc(2027, 1, 1, 0, 0, 1), utc(2027, 1, 1)),
    ],
)
def test_latest_fire_is_the_last_time_at_or_before(
    expression: str, at: datetime, expected: datetime
) -> None:
    assert latest_fire(expression, at) == expected


def test_other_offsets_are_read_as_the_same_instant_and_answered_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    at = datetime(2026, 3, 5, 1, 30, tzinfo=plus_two)  # 23:30 UTC on the 4th
    assert next_fire(DAILY_MIDNIGHT, at) == utc(2026, 3, 5)
    assert latest_fire(DAILY_MIDNIGHT, at) == utc(2026, 3, 4)
    assert next_fire(DAILY_MIDNIGHT, at).tzinfo == UTC


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        next_fire(DAILY_MIDNIGHT, datetime(2026, 3, 4))
    with pytest.raises(ValueError, match="naive"):
        latest_fire(DAILY_MIDNIGHT, datetime(2026, 3, 4))


@settings(max_examples=200, deadline=None)
@given(
    expression=st.sampled_from([job.cron for job in JOBS]),
    at=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
    ),
)
def test_the_latest_fire_and_the_next_one_bracket_every_instant(
    expression: str, at: datetime
) -> None:
    latest = latest_fire(expression, at)
    following = next_fire(expression, latest)
    assert latest <= at < following
    assert next_fire(expression, at) == following
    assert latest_fire(expression, following) == following
