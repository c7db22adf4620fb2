"""Posting webhook deliveries with httpx, to public addresses only.

Server-side request forgery: an endpoint URL is chosen by a customer, and a request from inside
the platform to ``http://169.254.169.254/`` or ``http://10.0.0.5/`` would reach what the
customer cannot. Every address the host resolves to must be global; the request then goes to
the vetted address itself (the host name only in ``Host`` and TLS SNI), so a DNS answer that
changes between the check and the connection cannot slip a private address in. Redirects are
not followed for the same reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class UnsafeEndpoint(ValueError):
    """The URL may not be called: wrong scheme, credentials in it, or a non-public address."""


class EndpointUnreachable(ConnectionError):
    """The host did not resolve, or the connection failed or timed out."""


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    addresses: list[IPAddress]


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not address.is_multicast


class EndpointPolicy:
    """Which webhook URLs may be called."""

    def __init__(self, *, allow_private: bool = False, resolver: Resolver = system_resolver):
        self.allow_private = allow_private
        self._resolve = resolver

    def check_url(self, url: str) -> SplitResult:
        parts = urlsplit(url)
        allowed = {"https", "http"} if self.allow_private else {"https"}
        if parts.scheme not in allowed:
            raise UnsafeEndpoint(f"webhook URLs must use {' or '.join(sorted(allowed))}: {url!r}")
        if parts.username or parts.password:
            raise UnsafeEndpoint("webhook URLs may not carry credentials")
        if not parts.hostname:
            raise UnsafeEndpoint(f"webhook URL without a host: {url!r}")
        try:
            parts.port  # noqa: B018 - raises for a malformed port
        except ValueError as exc:
            raise UnsafeEndpoint(f"bad port in {url!r}") from exc
        return parts

    async def vet(self, url: str) -> Target:
        """Resolve the host and check every address it has."""
        parts = self.check_url(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                resolved = await self._resolve(host, port)
            except OSError as exc:
                raise EndpointUnreachable(f"cannot resolve {host!r}: {exc}") from exc
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolved]
            if not addresses:
                raise EndpointUnreachable(f"{host!r} has no address")
        if not self.allow_private:
            refused = [str(a) for a in addresses if not is_public(a)]
            if refused:
                raise UnsafeEndpoint(
                    f"{host!r} resolves to non-public address(es) {', '.join(refused)}; "
                    "loopback, private and link-local endpoints are refused"
                )
        return Target(url=url, host=host, addresses=addresses)


class HttpWebhookClient:
    """POSTs a body to a vetted endpoint; returns the HTTP status code."""

    def __init__(self, policy: EndpointPolicy, *, timeout: float = 10.0) -> None:
        self.policy = policy
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": "PRS-Webhooks/1"},
        )

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        target = await self.policy.vet(url)
        pinned = _pin(target)
        request_headers = {**headers, "Host": _host_header(url)}
        try:
            response = await self._client.post(
                pinned,
                content=body,
                headers=request_headers,
                extensions={"sni_hostname": target.host},
            )
        except httpx.TransportError as exc:
            raise EndpointUnreachable(f"{type(exc).__name__}: {exc}") from exc
        return response.status_code

    async def close(self) -> None:
        await self._client.aclose()


def _pin(target: Target) -> str:
    parts = urlsplit(target.url)
    address = target.addresses[0]
    host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2]
