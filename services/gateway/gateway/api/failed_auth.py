"""Failed authentications are limited per client address.

Every request presenting a key that does not verify spends a token of its address's bucket
(``PRS_AUTH_FAILURE_BURST``, refilled at ``PRS_AUTH_FAILURE_LIMIT_PER_MINUTE``). Once the bucket is
empty the address is answered 429 with Retry-After, and the keys it presents are no longer looked
up at all until a token comes back: it cannot go on guessing, and guesses cost no database round
trip. A request whose key verifies spends nothing, so a working client is never slowed.

Keys the gateway verified in the last seconds (its key cache) still pass from an address that is
locked out: a client already at work is not locked out by someone else failing from its address
(a NAT, a proxy). Those are keys in use, 256-bit random or, for ``PRS_ADMIN_API_KEY`` in
production, at least 24 characters; no guessing rate makes them findable.

IPv6 clients are counted per /64, the block one subscriber usually holds, so that walking through
its addresses does not reset the count.
"""

from __future__ import annotations

import ipaddress
import logging

from fastapi import Request

from gateway.limits import Limiter

log = logging.getLogger(__name__)


def client_key(request: Request) -> str:
    """The bucket of the request's client: its IPv4 address, or its IPv6 /64."""
    host = request.client.host if request.client is not None else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


async def record_failure(limiter: Limiter, address: str) -> float:
    """Spend a token for a failed authentication; the seconds to wait once none is left."""
    wait = await limiter.take(address)
    if wait > 0:
        log.warning("too many failed authentications from %s; refusing for %.0fs", address, wait)
    return wait
