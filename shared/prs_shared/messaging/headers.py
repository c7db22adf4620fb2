"""AMQP headers the runtime reads and writes, and how it reads them defensively.

A header may come from anywhere (another client, a hand-made message, the broker itself), so
every reader here accepts any value and falls back instead of raising.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ATTEMPT_HEADER = "x-attempt"
"""Which try of a command this delivery is (1 for the first)."""
REASON_HEADER = "x-dead-letter-reason"
ATTEMPTS_HEADER = "x-attempts"
ERROR_HEADER = "x-last-error"
ORIGINAL_QUEUE_HEADER = "x-original-queue"
OUTAGE_SINCE_HEADER = "x-database-outage-since"
"""When (Unix seconds) this message first found its service's database unreachable."""
OUTAGE_RETRIES_HEADER = "x-database-outage-retries"
"""How often it has waited the outage out since."""
MAX_ERROR_CHARS = 2000
MAX_ATTEMPT = 10_000
"""Far above any retry limit; a larger header value is nonsense and read as this."""


def int_header(headers: Mapping[str, Any] | None, name: str, default: int) -> int:
    """A small positive integer header, whatever type it arrived as; ``default`` if unusable."""
    raw = (headers or {}).get(name, default)
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode("ascii", "replace")
    if isinstance(raw, str):
        # str.isdigit accepts superscripts ("²") that int() refuses; isdecimal matches int().
        raw = raw.strip()
        raw = int(raw) if raw.isascii() and raw.isdecimal() else default
    if not isinstance(raw, int) or isinstance(raw, bool):
        return default
    return min(max(1, raw), MAX_ATTEMPT)


def attempt_of(headers: Mapping[str, Any] | None, name: str = ATTEMPT_HEADER) -> int:
    return int_header(headers, name, 1)


def error_text(exc: BaseException) -> str:
    """``Type: message``; an error class with an ``error_label`` (a time limit) reads
    ``label: message``."""
    label = getattr(type(exc), "error_label", None)
    text = f"{label if isinstance(label, str) else type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]


def epoch_header(headers: Mapping[str, Any] | None, name: str) -> float | None:
    """A Unix time header (int or float seconds); None if absent or unusable."""
    raw = (headers or {}).get(name)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw) if raw > 0 else None
