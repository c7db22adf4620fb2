"""The compose load balancer's nginx configuration, run in front of a real gateway process.

deploy/nginx/gateway.conf is served by Debian's nginx (`make nginx` unpacks it under .venv) with
two substitutions only: the upstream `gateway:8000` becomes the test gateway's loopback address
(an address needs no DNS, so Docker's resolver line stays as it is) and the listening port a
free one. The gateway runs as `prs-gateway` trusting all of 127.0.0.0/8, where nginx and the
test's clients both are: as in docker-compose.yml, whose trusted private ranges may hold clients
too, only nginx replacing X-Forwarded-For keeps a client from choosing its own address.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .conftest import REPO, free_port, running_nginx, stop, wait_until_ready

BURST = 3


@dataclass
class Gateway:
    url: str
    admin_key: str


@pytest.fixture
def gateway(amqp_url: str, namespace: str, tmp_path: Path) -> Iterator[Gateway]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRS_") and k != "AMQP_URL"}
    port = free_port()
    key = secrets.token_urlsafe(24)
    env.update(
        {
            "AMQP_URL": amqp_url,
            "PRS_NAMESPACE": namespace,
            "PRS_DATA_DIR": str(tmp_path / "data"),
            "PRS_ADMIN_API_KEY": key,
            "PRS_GATEWAY_PORT": str(port),
            "PRS_TRUSTED_PROXIES": "127.0.0.0/8",
            "PRS_AUTH_FAILURE_BURST": str(BURST),
            "PRS_AUTH_FAILURE_LIMIT_PER_MINUTE": "1",
            "PRS_LOG_JSON": "false",
        }
    )
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(REPO / ".venv/bin/prs-gateway")], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{url}/readyz", process, log)
        yield Gateway(url, key)
    finally:
        stop(process)


@pytest.fixture
def load_balancer(gateway: Gateway, tmp_path: Path) -> Iterator[str]:
    upstream = gateway.url.removeprefix("http://")
    with running_nginx(
        tmp_path, {"set $gateway gateway:8000;": f"set $gateway {upstream};"}
    ) as url:
        yield url


def client_from(address: str, base_url: str) -> httpx.Client:
    """A client whose connections leave from ``address`` (any of 127.0.0.0/8 on Linux)."""
    return httpx.Client(
        transport=httpx.HTTPTransport(local_address=address), base_url=base_url, timeout=30
    )


def guesses(client: httpx.Client, n: int, forwarded_for: str | None = None) -> list[int]:
    codes = []
    for i in range(n):
        headers = {"Authorization": f"Bearer wrong-{i}"}
        if forwarded_for is not None:
            # What a client trying to escape the limit would send: a new address every time.
            headers["X-Forwarded-For"] = f"{forwarded_for}.{i}"
        codes.append(client.get("/api/background-tasks/", headers=headers).status_code)
    return codes


def test_the_api_and_its_readiness_are_served_through_the_load_balancer(
    load_balancer: str, gateway: Gateway
) -> None:
    with httpx.Client(base_url=load_balancer, timeout=30) as client:
        assert client.get("/readyz").status_code == 200
        listed = client.get(
            "/api/background-tasks/", headers={"Authorization": f"Bearer {gateway.admin_key}"}
        )
        assert listed.status_code == 200, listed.text


def test_failed_authentications_are_counted_per_client_behind_the_load_balancer(
    load_balancer: str,
) -> None:
    with (
        client_from("127.0.0.2", load_balancer) as guessing,
        client_from("127.0.0.3", load_balancer) as other,
    ):
        # The forwarded address a client makes up is replaced by nginx: its guesses all count
        # against its own address, and it is locked out after the burst.
        assert guesses(guessing, BURST + 1, forwarded_for="203.0.113") == [401] * BURST + [429]
        # Another client behind the same load balancer keeps its allowance: the gateway sees
        # each client's address, not nginx's.
        assert guesses(other, 1) == [401]


def test_the_console_event_stream_reaches_the_browser_through_the_load_balancer(
    load_balancer: str, gateway: Gateway
) -> None:
    with httpx.Client(base_url=load_balancer, timeout=30) as client:
        login = client.post("/console/login", data={"api_key": gateway.admin_key})
        assert login.status_code == 303, login.text
        # The stream stays open for minutes; its first events arriving at all shows nothing
        # between the gateway and the client holds them back.
        with client.stream("GET", "/console/tasks/feed") as feed:
            assert feed.status_code == 200
            assert feed.headers["content-type"].startswith("text/event-stream")
            received = ""
            for chunk in feed.iter_text():
                received += chunk
                if "event: rows" in received:
                    break
        assert received.startswith("retry: 1000")
