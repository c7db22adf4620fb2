"""The leader lease: one row that says which scheduler instance may schedule, and until when.

An instance takes the lease when it is free or expired and renews it while it lives. Every run is
staged in a transaction that first checks (and on PostgreSQL locks) the lease row, so an instance
that lost the lease — paused past its TTL, say — cannot stage runs any more, even if it still
believes it leads.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scheduler.models import Lease
from scheduler.sql import upsert_where

LEASE_NAME = "scheduler"


class LeaseLost(Exception):
    """This instance does not hold the lease (any more) and must not schedule."""


class LeaderLease:
    """Operations on the lease row, each in the caller's transaction.

    A lease is valid while ``now < expires_at``. Time is the instances' own clocks, which must
    agree to well under the TTL.
    """

    def __init__(self, holder: str, ttl: timedelta, name: str = LEASE_NAME) -> None:
        if ttl <= timedelta(0):
            raise ValueError("lease TTL must be positive")
        self.holder = holder
        self.ttl = ttl
        self.name = name

    async def acquire(self, session: AsyncSession, now: datetime) -> bool:
        """Take the lease if it is free or expired, renew it if ours; True when we hold it."""
        row = Lease.__table__.c
        return await upsert_where(
            session,
            Lease,
            {"name": self.name, "holder": self.holder, "expires_at": now + self.ttl},
            key=["name"],
            where=or_(row.holder == self.holder, row.expires_at <= now),
        )

    async def fence(self, session: AsyncSession, now: datetime) -> None:
        """Raise :class:`LeaseLost` unless we hold a valid lease.

        The row stays locked (PostgreSQL ``FOR UPDATE``; SQLite transactions here take the write
        lock at BEGIN) until the caller's transaction ends, so no other instance can take the lease
        between this check and the commit of what the caller stages.
        """
        held = await session.scalar(
            select(Lease.holder)
            .where(
                Lease.name == self.name,
                Lease.holder == self.holder,
                Lease.expires_at > now,
            )
            .with_for_update()
        )
        if held is None:
            raise LeaseLost(f"{self.holder} does not hold the {self.name} lease")

    async def release(self, session: AsyncSession, now: datetime) -> None:
        """Give the lease up (on shutdown), so that a standby takes over at once."""
        await session.execute(
            update(Lease)
            .where(Lease.name == self.name, Lease.holder == self.holder)
            .values(expires_at=now)
        )

    async def current(self, session: AsyncSession) -> Lease | None:
        return await session.get(Lease, self.name, populate_existing=True)
