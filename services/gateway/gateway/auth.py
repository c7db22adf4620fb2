"""API keys: random tokens, stored hashed, compared in constant time."""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import ApiKey
from prs_shared.db.upsert import insert_for
from prs_shared.messaging.envelope import utcnow

KEY_PREFIX = "prs_"


class Role(enum.StrEnum):
    ADMIN = "admin"
    """Everything, every organization."""
    OPERATOR = "operator"
    """Queue, cancel and retry tasks, trigger processes, of its organization."""
    SERVICE = "service"
    """Another PRS service: queue tasks and read their status, of its organization."""
    VIEWER = "viewer"
    """Read-only."""


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: Role
    organization_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def authenticate(session: AsyncSession, presented: str) -> Principal | None:
    digest = hash_key(presented)
    row = (
        await session.execute(
            select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
        )
    ).scalar_one_or_none()
    # The lookup is by hash; comparing again in constant time keeps a timing side channel shut
    # even if an index lookup leaked anything about near misses.
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return Principal(row.id, row.name, Role(row.role), row.organization_id)


async def ensure_key(
    session: AsyncSession,
    key: str,
    *,
    name: str,
    role: Role,
    organization_id: str | None = None,
) -> None:
    """Make sure a key with this value exists (idempotent; used for PRS_ADMIN_API_KEY).

    One statement, so that gateway replicas starting together on one database all succeed: the
    second waits for the first's row and then only restores its role.
    """
    stmt = insert_for(session, ApiKey.__table__).values(
        id=str(uuid.uuid4()),
        name=name,
        key_hash=hash_key(key),
        role=role.value,
        organization_id=organization_id,
        created_at=utcnow(),
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["key_hash"], set_={"role": role.value, "revoked_at": None}
        )
    )
