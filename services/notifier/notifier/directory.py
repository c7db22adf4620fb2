"""The recipient directory: users and organizations as the latest PRS snapshots describe them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.models import DirectoryOrganization, DirectoryUser
from prs_shared.messaging.prs_events import Organization, User, UserRole


async def upsert_user(session: AsyncSession, snapshot: User, now: datetime) -> bool:
    """Store the snapshot unless a newer version is held already; True when stored."""
    row = await session.get(DirectoryUser, snapshot.user_id)
    if row is None:
        row = DirectoryUser(user_id=snapshot.user_id)
        session.add(row)
    elif row.version > snapshot.version:
        return False
    row.organization_id = snapshot.organization_id
    row.email = str(snapshot.email)
    row.full_name = snapshot.full_name
    row.roles = [role.value for role in snapshot.roles]
    row.active = snapshot.active
    row.password_expires_at = snapshot.password_expires_at
    row.version = snapshot.version
    row.updated_at = now
    return True


async def upsert_organization(session: AsyncSession, snapshot: Organization, now: datetime) -> bool:
    row = await session.get(DirectoryOrganization, snapshot.organization_id)
    if row is None:
        row = DirectoryOrganization(organization_id=snapshot.organization_id)
        session.add(row)
    elif row.version > snapshot.version:
        return False
    row.name = snapshot.name
    row.version = snapshot.version
    row.updated_at = now
    return True


async def user_of(
    session: AsyncSession, user_id: str, organization_id: str | None
) -> DirectoryUser | None:
    """The user, if of ``organization_id`` (any organization when None).

    The organization is part of the query: a user of another organization is not found, exactly
    like an unknown one.
    """
    stmt = select(DirectoryUser).where(DirectoryUser.user_id == user_id)
    if organization_id is not None:
        stmt = stmt.where(DirectoryUser.organization_id == organization_id)
    return (await session.scalars(stmt)).first()


async def has_address(session: AsyncSession, organization_id: str, address: str) -> bool:
    """Whether an active user of the organization has this address (case-insensitive)."""
    found = await session.scalar(
        select(DirectoryUser.user_id)
        .where(
            DirectoryUser.organization_id == organization_id,
            DirectoryUser.active,
            func.lower(DirectoryUser.email) == address.lower(),
        )
        .limit(1)
    )
    return found is not None


async def organization_name(session: AsyncSession, organization_id: str | None) -> str | None:
    if organization_id is None:
        return None
    row = await session.get(DirectoryOrganization, organization_id)
    return row.name if row is not None else None


async def users_with_role(
    session: AsyncSession, organization_id: str, role: UserRole | str
) -> Sequence[DirectoryUser]:
    """Active users of the organization holding the role, in a stable order."""
    rows = (
        await session.scalars(
            select(DirectoryUser)
            .where(DirectoryUser.organization_id == organization_id, DirectoryUser.active)
            .order_by(DirectoryUser.user_id)
        )
    ).all()
    wanted = str(role)
    # Roles are a small JSON list; filtering here keeps the query the same on SQLite and PostgreSQL.
    return [row for row in rows if wanted in row.roles]
