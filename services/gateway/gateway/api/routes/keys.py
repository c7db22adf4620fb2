"""API key management (admins only)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from gateway.api.deps import SessionDep, StateDep, require
from gateway.api.problems import Problem
from gateway.auth import Role, hash_key, new_key
from gateway.models import ApiKey
from prs_shared.messaging.common import Identifier
from prs_shared.messaging.envelope import utcnow

router = APIRouter(prefix="/api/keys", tags=["api keys"], dependencies=[require(Role.ADMIN)])


class NewKey(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "billing service", "role": "service", "organization_id": "42"}]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    role: Role
    organization_id: Identifier | None = Field(
        default=None, description="Scope: the key acts for this organization only."
    )


class KeyView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "9a1b2c3d-0000-4000-8000-000000000001",
                    "name": "billing service",
                    "role": "service",
                    "organization_id": "42",
                    "created_at": "2026-11-28T12:00:00Z",
                    "revoked_at": None,
                }
            ]
        }
    )

    id: str
    name: str
    role: Role
    organization_id: str | None
    created_at: datetime
    revoked_at: datetime | None


class CreatedKey(KeyView):
    key: str = Field(description="Shown once; only its hash is stored.")


def _view(row: ApiKey) -> KeyView:
    return KeyView(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        organization_id=row.organization_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_key(body: NewKey, session: SessionDep) -> CreatedKey:
    """Create a key; its value is returned once."""
    key = new_key()
    row = ApiKey(
        id=str(uuid.uuid4()),
        name=body.name,
        key_hash=hash_key(key),
        role=body.role.value,
        organization_id=body.organization_id,
        created_at=utcnow(),
    )
    async with session.begin():
        session.add(row)
    return CreatedKey(**_view(row).model_dump(), key=key)


@router.get("/")
async def list_keys(session: SessionDep) -> list[KeyView]:
    """Every key (never its value)."""
    rows = (await session.execute(select(ApiKey).order_by(ApiKey.created_at))).scalars()
    return [_view(r) for r in rows]


@router.delete("/{key_id}", responses={404: {"description": "No such key."}})
async def revoke_key(key_id: str, session: SessionDep, state: StateDep) -> KeyView:
    """Revoke a key; it stops working at once on this gateway."""
    async with session.begin():
        row = await session.get(ApiKey, key_id)
        if row is None:
            raise Problem(404, "Key not found", f"no key {key_id}")
        row.revoked_at = row.revoked_at or utcnow()
    state.keys.forget()
    return _view(row)
