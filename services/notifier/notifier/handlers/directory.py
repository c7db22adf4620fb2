"""Keeping the recipient directory current from PRS user and organization events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from notifier import directory
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.messaging.prs_events import Organization, User

Clock = Callable[[], datetime]


async def on_user(payload: User, ctx: HandlerContext, clock: Clock) -> dict[str, Any]:
    stored = await directory.upsert_user(ctx.session, payload, clock())
    return {"user_id": payload.user_id, "version": payload.version, "stored": stored}


async def on_organization(
    payload: Organization, ctx: HandlerContext, clock: Clock
) -> dict[str, Any]:
    stored = await directory.upsert_organization(ctx.session, payload, clock())
    return {
        "organization_id": payload.organization_id,
        "version": payload.version,
        "stored": stored,
    }
