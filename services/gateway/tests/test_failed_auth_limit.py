"""Failed authentications are limited per client address: 429 with Retry-After once spent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.requests import Request

from gateway.api.failed_auth import client_key
from gateway.main import server_config
from gateway.ratelimit import RateLimiter

from .conftest import Gateway

BURST = 5
LIST_URL = "/api/background-tasks/"


@pytest.fixture
def gateway_overrides() -> dict[str, object]:
    return {"auth_failure_burst": BURST, "auth_failure_limit_per_minute": 6}


@asynccontextmanager
async def client_from(gateway: Gateway, host: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway.app, client=(host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


async def wrong_keys(client: httpx.AsyncClient, n: int) -> list[int]:
    return [
        (await client.get(LIST_URL, headers={"Authorization": f"Bearer wrong-{i}"})).status_code
        for i in range(n)
    ]


async def test_failed_authentications_past_the_burst_are_429_with_retry_after(
    gateway: Gateway,
) -> None:
    assert await wrong_keys(gateway.client, BURST) == [401] * BURST
    limited = await gateway.client.get(LIST_URL, headers={"Authorization": "Bearer wrong"})
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["title"] == "Too many requests"
    assert 1 <= int(limited.headers["retry-after"]) <= 10
    # Still refused while no token has come back.
    assert await wrong_keys(gateway.client, 20) == [429] * 20


async def test_a_locked_out_address_gets_no_key_looked_up_but_keys_in_use_still_work(
    gateway: Gateway,
) -> None:
    unused = await gateway.make_key("viewer")  # created, never presented
    await wrong_keys(gateway.client, BURST + 1)
    in_use = await gateway.client.get(LIST_URL, headers=gateway.auth())
    assert in_use.status_code == 200, in_use.text
    # Not checked at all: from this address a valid key and a guess look the same.
    assert (await gateway.client.get(LIST_URL, headers=gateway.auth(unused))).status_code == 429


async def test_other_addresses_keep_their_own_allowance(gateway: Gateway) -> None:
    await wrong_keys(gateway.client, BURST + 1)
    async with client_from(gateway, "203.0.113.9") as other:
        assert await wrong_keys(other, 1) == [401]
        assert (await other.get(LIST_URL, headers=gateway.auth())).status_code == 200


async def test_requests_with_a_valid_key_spend_nothing(gateway: Gateway) -> None:
    codes = {
        (await gateway.client.get(LIST_URL, headers=gateway.auth())).status_code
        for _ in range(3 * BURST)
    }
    assert codes == {200}
    # The whole allowance of failures is still there.
    assert await wrong_keys(gateway.client, BURST) == [401] * BURST


async def test_a_request_without_any_key_is_401_and_spends_nothing(gateway: Gateway) -> None:
    codes = [(await gateway.client.get(LIST_URL)).status_code for _ in range(3 * BURST)]
    assert codes == [401] * (3 * BURST)
    assert await wrong_keys(gateway.client, BURST) == [401] * BURST


PROXY = "172.18.0.5"
"""The load balancer's address on the compose network, inside PRS_TRUSTED_PROXIES below."""


@asynccontextmanager
async def served_from(
    gateway: Gateway, peer: str, trusted_proxies: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A client at ``peer`` talking to the gateway as uvicorn serves it (its proxy headers)."""
    settings = gateway.settings.model_copy(update={"trusted_proxies": trusted_proxies})
    config = server_config(settings, gateway.app)
    config.load()
    transport = httpx.ASGITransport(app=config.loaded_app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


async def forwarded_wrong_keys(client: httpx.AsyncClient, forwarded_for: str, n: int) -> list[int]:
    return [
        (
            await client.get(
                LIST_URL,
                headers={"Authorization": f"Bearer wrong-{i}", "X-Forwarded-For": forwarded_for},
            )
        ).status_code
        for i in range(n)
    ]


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_allowance(
    gateway: Gateway,
) -> None:
    async with served_from(gateway, PROXY, "172.16.0.0/12") as proxy:
        assert await forwarded_wrong_keys(proxy, "203.0.113.7", BURST + 1) == [401] * BURST + [429]
        # Another client behind the same proxy is not locked out with the first one.
        assert await forwarded_wrong_keys(proxy, "203.0.113.8", 1) == [401]


async def test_x_forwarded_for_from_a_peer_that_is_no_trusted_proxy_is_ignored(
    gateway: Gateway,
) -> None:
    async with served_from(gateway, "198.51.100.20", "172.16.0.0/12") as direct:
        # A new made-up forwarded address with every guess: counted against the peer itself.
        codes = [
            (await forwarded_wrong_keys(direct, f"203.0.113.{i}", 1))[0] for i in range(BURST + 1)
        ]
        assert codes == [401] * BURST + [429]


def _request_from(host: str) -> Request:
    return Request({"type": "http", "client": (host, 1), "headers": []})


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("testclient", "testclient"),
    ],
)
def test_clients_are_counted_per_ipv4_address_and_per_ipv6_64(host: str, key: str) -> None:
    assert client_key(_request_from(host)) == key


def test_the_limiter_forgets_full_buckets_first_and_stays_bounded() -> None:
    limiter = RateLimiter(per_minute=60, burst=2, max_keys=10)
    limiter.take("busy", now=0.0)
    limiter.take("busy", now=0.0)
    for i in range(100):
        limiter.take(f"k{i}", now=0.0)
        assert len(limiter) <= 10
    # A refilled bucket is the same as none: forgetting it changes no answer.
    assert limiter.wait("k0", now=10.0) == 0
