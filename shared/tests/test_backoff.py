"""Retry delays as a pure function."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prs_shared.messaging.backoff import retry_delay
from prs_shared.messaging.topology import DELAY_TIERS_MS, Topology


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (4, 4.0, 8.0), (12, 150.0, 300.0)],
)
def test_delays_double_per_attempt_within_equal_jitter_bounds(
    attempt: int, low: float, high: float
) -> None:
    rng = random.Random(attempt)
    for _ in range(200):
        assert low <= retry_delay(attempt, base=1.0, cap=300.0, rng=rng) <= high


@given(
    st.integers(min_value=1, max_value=60),
    st.floats(min_value=0.01, max_value=10),
    st.integers(min_value=0, max_value=2**32),
)
def test_each_wait_lies_between_half_and_all_of_its_capped_exponential_step(
    attempt: int, base: float, seed: int
) -> None:
    step = min(300.0, base * 2 ** (attempt - 1))
    delay = retry_delay(attempt, base=base, cap=300.0, rng=random.Random(seed))
    assert step / 2 <= delay <= step


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        retry_delay(0, base=1, cap=1)


@pytest.mark.parametrize(
    ("delay_ms", "tier"),
    [(1, 250), (250, 250), (499, 250), (500, 500), (10**9, DELAY_TIERS_MS[-1])],
)
def test_a_delay_waits_in_the_largest_tier_not_above_it(delay_ms: int, tier: int) -> None:
    assert Topology().delay_tier(delay_ms) == tier


def test_namespaced_names_keep_the_seed_queue_names() -> None:
    t = Topology(namespace="x.")
    assert t.queue("workflow") == "x.workflow"
    assert t.dlq(t.queue("workflow")) == "x.workflow.dlq"
    assert Topology().queue("file_processing") == "file_processing"


def test_an_absurd_attempt_count_gets_the_cap_instead_of_overflowing() -> None:
    # A header may claim any count; 2.0 ** 10_000 would raise OverflowError.
    delay = retry_delay(10_000, base=1.0, cap=30.0, rng=random.Random(1))
    assert 15.0 <= delay <= 30.0
