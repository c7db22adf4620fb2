"""Webhook signatures: HMAC-SHA256 over ``<timestamp>.<body>``, sent as ``v1=<hex>``.

Signing the timestamp with the body lets a receiver refuse a replayed delivery (a captured
request re-sent later) by checking that ``X-PRS-Timestamp`` is recent.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-PRS-Timestamp"
SIGNATURE_HEADER = "X-PRS-Signature"
EVENT_HEADER = "X-PRS-Event"
DELIVERY_HEADER = "X-PRS-Delivery"
SCHEME = "v1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-PRS-Signature`` value for a body sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def verify(
    secret: str,
    timestamp_header: str,
    body: bytes,
    signature_header: str,
    *,
    now: float,
    tolerance: float = 300.0,
) -> bool:
    """What a receiver does: a recent timestamp and a matching ``v1`` signature."""
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    offered = [part.strip() for part in signature_header.split(",")]
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)
