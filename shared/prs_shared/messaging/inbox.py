"""The inbox: ids of messages this service has dealt with, and how."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from prs_shared.db.tables import inbox
from prs_shared.messaging.envelope import utcnow

CANCELLED_MARKER = "__prs_cancelled__"


def is_cancel_marker(result: dict[str, Any] | None) -> bool:
    return bool(result) and result is not None and result.get(CANCELLED_MARKER) is True


async def mark_cancelled(session: AsyncSession, message_id: str, task_id: str) -> bool:
    """Claim a message id as cancelled; False when it was dealt with already."""
    exists = await session.scalar(
        select(inbox.c.message_id).where(inbox.c.message_id == message_id)
    )
    if exists is not None:
        return False
    await session.execute(
        insert(inbox).values(
            message_id=message_id,
            message_type="task.cancel",
            task_id=task_id,
            processed_at=utcnow(),
            result={CANCELLED_MARKER: True},
        )
    )
    return True
