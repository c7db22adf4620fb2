"""Token buckets in the process: per API key for the queuing endpoints (the seed's "API rate
limiting"), and per client address for failed authentications.

The gateway on SQLite (one replica) keeps its buckets here; on PostgreSQL the replicas share
them as rows (``gateway.limits``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    per_minute: float
    burst: int
    max_keys: int = 100_000
    """Buckets kept at most. Keys can come from outside (client addresses), so memory is bounded:
    full buckets are dropped first (forgetting one changes nothing), then the oldest."""
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one token; returns 0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        bucket = self._refilled(key, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return self._wait(bucket)

    def wait(self, key: str, now: float | None = None) -> float:
        """Seconds until ``key`` has a token (0 when it has one now), spending nothing."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        self._refill(bucket, now)
        return 0.0 if bucket.tokens >= 1 else self._wait(bucket)

    @staticmethod
    def retry_after_header(wait: float) -> str:
        return str(max(1, math.ceil(wait)))

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        self._refill(bucket, now)
        return bucket

    def _refill(self, bucket: _Bucket, now: float) -> None:
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now

    def _wait(self, bucket: _Bucket) -> float:
        return (1 - bucket.tokens) / self._rate

    @property
    def _rate(self) -> float:
        return self.per_minute / 60

    def _prune(self, now: float) -> None:
        # Down to nine tenths, so that a flood of new keys prunes once per many keys, not per key.
        target = self.max_keys * 9 // 10
        for key, bucket in list(self._buckets.items()):
            self._refill(bucket, now)
            if bucket.tokens >= self.burst:
                del self._buckets[key]
        for key in list(self._buckets)[: max(0, len(self._buckets) - target)]:
            del self._buckets[key]
