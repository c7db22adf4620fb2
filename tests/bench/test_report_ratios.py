"""The benchmark report holds the gateway against its target only when wrk drove the load: the
Python load generator saturates before a no-op endpoint does, which flatters the ratio."""

from __future__ import annotations

import pytest

from bench.common import SectionResult
from bench.report import GATEWAY_TARGET, ratios


def _line(key: str, rate: float, generator: str) -> SectionResult:
    return SectionResult(
        key=key,
        label=key,
        unit="req/s",
        n=1000,
        completed=1000,
        seconds=1.0,
        rate=rate,
        extra={"load_generator": generator},
    )


@pytest.mark.parametrize(("generator", "target"), [("wrk", GATEWAY_TARGET), ("python", None)])
def test_the_gateway_ratio_has_a_target_only_under_wrk(
    generator: str, target: float | None
) -> None:
    found = ratios(
        [_line("gateway_noop", 400.0, generator), _line("gateway_queue", 300.0, generator)]
    )
    [ratio] = [r for r in found if r.project == "gateway_queue"]
    assert ratio.value == pytest.approx(0.75)
    assert ratio.target == target
    assert ratio.met is (None if target is None else True)
