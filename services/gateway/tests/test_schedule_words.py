"""Cron expressions in words and their next time, as the schedule list and process-status show."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.schedules import PROCESSES, in_words, next_run


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("0 0 * * *", "daily at 00:00 UTC"),
        ("0 1 * * *", "daily at 01:00 UTC"),
        ("0 */6 * * *", "every 6 hours"),
        ("0 0 * * 0", "weekly on Sundays at 00:00 UTC"),
        ("30 9 * * 5", "weekly on Fridays at 09:30 UTC"),
        ("0 * * * *", "hourly"),
        ("*/5 * * * *", "every 5 minutes"),
        ("* * * * *", "every minute"),
        ("0 0 1 * *", "cron 0 0 1 * * (UTC)"),
        ("* * * * * *", "cron * * * * * * (UTC)"),
    ],
)
def test_common_cron_shapes_read_as_words(cron: str, words: str) -> None:
    assert in_words(cron) == words


def test_the_next_run_is_strictly_after_now_in_utc() -> None:
    at = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
    assert next_run("0 */6 * * *", at) == datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert next_run("not cron", at) is None


def test_every_seed_process_has_a_valid_cron() -> None:
    at = datetime(2026, 12, 6, tzinfo=UTC)
    assert len(PROCESSES) == 8
    assert all(next_run(p.cron, at) for p in PROCESSES.values())
