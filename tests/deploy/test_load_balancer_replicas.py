"""The load balancer follows the gateway's replicas the way Docker's DNS announces them.

Docker's embedded DNS answers a service's name with one A record per running replica. Here a
small DNS server on loopback plays that part for `gateway`, and three HTTP servers on
127.0.0.2-4 (same port) play the replicas, each answering with its own address. nginx runs
deploy/nginx/gateway.conf with the resolver pointed at that DNS server, its cache shortened from
10 s to 1 s so that the test need not wait, and the replicas' port in place of 8000.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import httpx
import pytest

from .conftest import free_port, running_nginx

REPLICAS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
SETTLE_TIMEOUT = 30.0


class Dns:
    """Answers A queries for `gateway` with ``addresses``, as Docker's DNS does (TTL 600)."""

    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return  # closed
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            question = query.question[0]
            if question.name.to_text() != "gateway.":
                reply.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.A and self.addresses:
                reply.answer.append(
                    dns.rrset.from_text_list(
                        question.name, 600, dns.rdataclass.IN, dns.rdatatype.A, self.addresses
                    )
                )
            self.sock.sendto(reply.to_wire(), peer)

    def close(self) -> None:
        self.sock.close()


class Replica(ThreadingHTTPServer):
    daemon_threads = True


def serve_replica(address: str, port: int) -> Replica:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = address.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = Replica((address, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextmanager
def replicas_on_one_port() -> Iterator[tuple[int, dict[str, Replica]]]:
    for _ in range(20):
        port = free_port(REPLICAS[0])
        with ExitStack() as stack:
            try:
                servers = {}
                for address in REPLICAS:
                    server = serve_replica(address, port)
                    stack.callback(server.server_close)
                    stack.callback(server.shutdown)
                    servers[address] = server
            except OSError:
                continue  # the port was taken on another address: pick another
            yield port, servers
            return
    pytest.fail("no port free on all of 127.0.0.2-4")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, Dns, dict[str, Replica]]]:
    dns_server = Dns()
    dns_server.addresses = list(REPLICAS[:2])
    try:
        with replicas_on_one_port() as (port, servers):
            substitutions = {
                "resolver 127.0.0.11 valid=10s": f"resolver 127.0.0.1:{dns_server.port} valid=1s",
                "set $gateway gateway:8000;": f"set $gateway gateway:{port};",
            }
            with running_nginx(tmp_path, substitutions) as url:
                yield url, dns_server, servers
    finally:
        dns_server.close()


def answered_by(client: httpx.Client, n: int) -> list[str]:
    responses = [client.get("/whoami") for _ in range(n)]
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    return [r.text for r in responses]


def eventually(condition: Callable[[], bool]) -> None:
    """Until ``condition`` holds; nginx re-resolves once its cached answer is a second old."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "the load balancer did not follow the DNS change"
        time.sleep(0.2)


def test_requests_are_spread_over_every_replica_the_dns_names(
    cluster: tuple[str, Dns, dict[str, Replica]],
) -> None:
    url, _, _ = cluster
    with httpx.Client(base_url=url, timeout=10) as client:
        assert set(answered_by(client, 60)) == set(REPLICAS[:2])


def test_a_replica_added_or_removed_is_followed_without_a_reload(
    cluster: tuple[str, Dns, dict[str, Replica]],
) -> None:
    url, dns_server, _ = cluster
    with httpx.Client(base_url=url, timeout=10) as client:
        dns_server.addresses = list(REPLICAS)  # --scale gateway=3
        eventually(lambda: REPLICAS[2] in answered_by(client, 20))
        assert set(answered_by(client, 90)) == set(REPLICAS)

        dns_server.addresses = [REPLICAS[1]]  # --scale gateway=1
        eventually(lambda: set(answered_by(client, 20)) == {REPLICAS[1]})


def test_a_replica_that_refuses_connections_is_skipped_for_another(
    cluster: tuple[str, Dns, dict[str, Replica]],
) -> None:
    url, _, servers = cluster
    stopped = servers[REPLICAS[0]]
    stopped.shutdown()
    stopped.server_close()  # still in the DNS answer, as a replica is while it stops
    with httpx.Client(base_url=url, timeout=10) as client:
        assert set(answered_by(client, 30)) == {REPLICAS[1]}
