"""How long a batch waits to fill: while deliveries keep coming, and no longer.

The event loop's sleep is replaced by one that records the wait and plays what arrives
meanwhile, so the decisions are checked without depending on this machine's timing.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from prs_shared.messaging import runtime as runtime_module
from prs_shared.messaging.runtime import Consumer
from prs_shared.messaging.subscription import Subscription

pytestmark = pytest.mark.asyncio


def consumer(batch_size: int, batch_wait: float) -> Consumer:
    sub = Subscription(
        queue="q",
        declare=None,  # type: ignore[arg-type]
        work=None,  # type: ignore[arg-type]
        accepts=None,
        batch_size=batch_size,
        batch_wait=batch_wait,
    )
    return Consumer(SimpleNamespace(settler=None, unit=None), sub, prefetch=64)  # type: ignore[arg-type]


def fake_sleep(monkeypatch: pytest.MonkeyPatch, c: Consumer, arrivals: list[int]) -> list[float]:
    """Each sleep lets ``arrivals[i]`` deliveries arrive (none once the list is used up)."""
    slept: list[float] = []
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds
        count = arrivals[len(slept) - 1] if len(slept) <= len(arrivals) else 0
        c._ready.extend(object() for _ in range(count))  # type: ignore[misc]

    loop: Any = SimpleNamespace(time=lambda: clock[0])
    monkeypatch.setattr(runtime_module.asyncio, "sleep", sleep)
    get_loop: Callable[[], Any] = lambda: loop  # noqa: E731
    monkeypatch.setattr(runtime_module.asyncio, "get_running_loop", get_loop)
    return slept


async def test_a_lone_delivery_waits_one_quiet_gap_not_the_whole_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = consumer(batch_size=500, batch_wait=0.02)
    c._ready.append(object())  # type: ignore[arg-type]
    slept = fake_sleep(monkeypatch, c, [])
    await c._gather(500)
    assert slept == [pytest.approx(0.002)]
    assert len(c._ready) == 1


async def test_a_stream_of_deliveries_keeps_the_batch_open_until_the_window_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = consumer(batch_size=500, batch_wait=0.02)
    c._ready.append(object())  # type: ignore[arg-type]
    slept = fake_sleep(monkeypatch, c, [3] * 50)
    await c._gather(500)
    assert sum(slept) == pytest.approx(0.02)
    assert len(c._ready) == 1 + 3 * len(slept)


async def test_a_full_batch_stops_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    c = consumer(batch_size=8, batch_wait=0.02)
    c._ready.append(object())  # type: ignore[arg-type]
    slept = fake_sleep(monkeypatch, c, [4, 4, 4])
    await c._gather(8)
    assert len(slept) == 2
    assert len(c._ready) == 9


async def test_the_wait_ends_at_the_first_gap_after_arrivals_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = consumer(batch_size=500, batch_wait=0.5)
    c._ready.append(object())  # type: ignore[arg-type]
    slept = fake_sleep(monkeypatch, c, [2, 1])
    await c._gather(500)
    assert slept == [pytest.approx(0.05)] * 3
    assert len(c._ready) == 4
