"""Where the scheduler reads the time: behind a Protocol so that tests can drive it."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from prs_shared.messaging.envelope import utcnow


class Clock(Protocol):
    """Tells the current time, timezone-aware UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The machine's clock. Leases assume every instance's clock is NTP-synchronised to well
    under the lease TTL."""

    def now(self) -> datetime:
        return utcnow()
