"""Retry delays: exponential backoff with jitter, as a pure function."""

from __future__ import annotations

import random


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before try ``attempt + 1``, after ``attempt`` tries failed.

    Equal jitter: half the exponential step is fixed, half random, so delays grow for sure
    while retries of many failed messages spread out instead of arriving together.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    # The exponent is capped: past 2**64 every step is the cap anyway, and a float power of a
    # hostile attempt count (a header) would overflow.
    step: float = min(cap, base * 2.0 ** min(attempt - 1, 64))
    draw: float = (rng or random).random()
    return step / 2 + draw * step / 2
