"""Queuing is rate-limited per key: 429 with Retry-After."""

from __future__ import annotations

import pytest

from gateway.ratelimit import RateLimiter

from .conftest import Gateway


@pytest.fixture
def gateway_overrides() -> dict[str, object]:
    return {"rate_limit_burst": 3, "rate_limit_per_minute": 6}


async def test_the_fourth_quick_request_of_a_key_is_429_with_retry_after(gateway: Gateway) -> None:
    key = await gateway.make_key("operator", "org-a")
    other = await gateway.make_key("operator", "org-a")
    body = {"deal_id": "1", "workflow_action": "verify_deal"}
    url = "/api/background-tasks/queue-deal-processing/"
    codes = [
        (await gateway.client.post(url, json=body, headers=gateway.auth(key))).status_code
        for _ in range(3)
    ]
    assert codes == [202, 202, 202]
    limited = await gateway.client.post(url, json=body, headers=gateway.auth(key))
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 10
    # Another key has its own bucket.
    assert (
        await gateway.client.post(url, json=body, headers=gateway.auth(other))
    ).status_code == 202


def test_tokens_come_back_at_the_configured_rate() -> None:
    limiter = RateLimiter(per_minute=60, burst=1)
    assert limiter.take("k", now=0.0) == 0
    assert limiter.take("k", now=0.5) == pytest.approx(0.5)
    assert limiter.take("k", now=1.0) == 0
