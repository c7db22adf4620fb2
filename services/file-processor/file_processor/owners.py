"""Whose files these are: the organization of every user and deal, from PRS events.

A profile picture belongs to a user and an attachment to a deal, and the caller's organization
(the envelope's ``organization_id``, from the API key) must be theirs (DESIGN.md §3 rule 8). The
file-processor checks that itself, where the files live, before it reads, scans or stores
anything. It keeps the little it needs for that — each user's and deal's organization — from the
``user.*`` and ``deal.*`` snapshots PRS publishes to every service:

- the gateway keeps no users or deals, so it cannot check up front;
- an organization carried in the command would only repeat what the caller claims;
- refusing every file whose owner cannot be checked would refuse all of them.

A user or deal of another organization is treated exactly like one not known (yet): the same
``TransientError`` with the same message, so the same retries (PRS may queue an upload before its
``user.created`` or ``deal.created`` arrives) and the same final status, and no file, no scan
result and no event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from file_processor.models import KnownOwner
from prs_shared.messaging.errors import TransientError
from prs_shared.messaging.files import ProcessFile
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.prs_events import Deal, User

SERVICE = "file-processor"
USER = "user"
DEAL = "deal"

Clock = Callable[[], datetime]


async def remember(
    session: AsyncSession,
    kind: str,
    owner_id: str,
    organization_id: str,
    version: int,
    now: datetime,
) -> bool:
    """Store the owner's organization unless a newer snapshot is held; True when stored."""
    row = await session.get(KnownOwner, (kind, owner_id))
    if row is None:
        row = KnownOwner(kind=kind, owner_id=owner_id)
        session.add(row)
    elif row.version >= version:
        return False
    row.organization_id = organization_id
    row.version = version
    row.updated_at = now
    return True


async def on_user(payload: User, ctx: HandlerContext, clock: Clock) -> dict[str, Any]:
    stored = await remember(
        ctx.session, USER, payload.user_id, payload.organization_id, payload.version, clock()
    )
    return {"user_id": payload.user_id, "version": payload.version, "stored": stored}


async def on_deal(payload: Deal, ctx: HandlerContext, clock: Clock) -> dict[str, Any]:
    stored = await remember(
        ctx.session, DEAL, payload.deal_id, payload.organization_id, payload.version, clock()
    )
    return {"deal_id": payload.deal_id, "version": payload.version, "stored": stored}


async def ensure_callers(session: AsyncSession, command: ProcessFile, caller: str | None) -> None:
    """Refuse the command unless every user and deal it names is of the caller's organization.

    A caller without organization (an admin key) may act for any. The organization is part of
    the query, so another organization's owner and an unknown one take the same path.
    """
    if caller is None:
        return
    for kind, owner_id in ((USER, command.user_id), (DEAL, command.deal_id)):
        if owner_id is None:
            continue
        found = await session.scalar(
            select(KnownOwner.owner_id).where(
                KnownOwner.kind == kind,
                KnownOwner.owner_id == owner_id,
                KnownOwner.organization_id == caller,
            )
        )
        if found is None:
            raise TransientError(f"{kind} {owner_id} is not known (yet) to {SERVICE}")
