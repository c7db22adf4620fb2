"""A robust connection over several broker addresses: the nodes of a RabbitMQ cluster.

aio-pika's robust connection takes one URL and, when the connection drops, reconnects to it and
restores channels, exchanges, queues and consumers. Against a cluster the node it reconnects to
may be the one that died, so :class:`FailoverConnection` moves to the next address at every
connection attempt after the first; everything else (restoration, reconnect callbacks) stays
aio-pika's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aio_pika import RobustConnection
from yarl import URL


def split_urls(value: str) -> list[str]:
    """``AMQP_URL`` as a list: one URL, or several separated by commas (node 1 first)."""
    urls = [part.strip() for part in value.split(",") if part.strip()]
    if not urls:
        raise ValueError("AMQP_URL holds no broker URL")
    for url in urls:
        parsed = URL(url)
        if parsed.scheme not in ("amqp", "amqps") or not parsed.host:
            # Refused here, at start: the connection would otherwise retry it for ever.
            shown = parsed.with_password("***") if parsed.password else parsed
            raise ValueError(
                f"AMQP_URL: {str(shown)!r} is not an amqp:// or amqps:// URL with a host "
                "(e.g. amqp://user:password@rabbitmq:5672/)"
            )
    return urls


def broker_addresses(value: str) -> str:
    """``host:port`` of every URL in ``AMQP_URL`` (for logs: no credentials)."""
    urls = [URL(u) for u in split_urls(value)]
    return ", ".join(f"{u.host or 'localhost'}:{u.port or 5672}" for u in urls)


if not hasattr(RobustConnection, "_RobustConnection__connect_transport"):  # pragma: no cover
    raise ImportError("this aio-pika's RobustConnection has no __connect_transport to fail over")


class FailoverConnection(RobustConnection):
    """A robust connection that tries the cluster's nodes in turn, starting with ``start``."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        start: int = 0,
        loop: asyncio.AbstractEventLoop | None = None,
        **kwargs: Any,
    ) -> None:
        self._urls = [URL(u) for u in urls]
        self._index = start % len(self._urls)
        self._attempted = False
        super().__init__(self._urls[self._index], loop=loop, **kwargs)

    @property
    def current_url(self) -> URL:
        """The address of the node this connection uses (or tries) now."""
        return self._urls[self._index]

    # The one step of RobustConnection that opens a transport (to ``self.url``), run for the
    # first connection and for every reconnection. The name is RobustConnection's private
    # ``__connect_transport`` as Python mangles it; tests/cluster fail if aio-pika renames it.
    async def _RobustConnection__connect_transport(self) -> None:
        if self._attempted:
            # Whether the previous node was lost or refused, another one is tried next.
            self._index = (self._index + 1) % len(self._urls)
        self._attempted = True
        self.url = self._urls[self._index]
        await super()._RobustConnection__connect_transport()  # type: ignore[misc]
