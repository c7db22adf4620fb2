"""The diagnostic task every service answers."""

from __future__ import annotations

from typing import Any

from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.handlers import HandlerContext, HandlerRegistry
from prs_shared.messaging.inbox import mark_cancelled
from prs_shared.messaging.messages import CANCEL_TASK, PING, CancelTask, Ping


async def handle_ping(payload: Ping, ctx: HandlerContext) -> dict[str, Any]:
    """Answer with who handled the ping and where it came from."""
    return {
        "service": ctx.service,
        "worker": ctx.worker,
        "queue": ctx.queue,
        "attempt": ctx.attempt,
        "answered_at": utcnow().isoformat(),
        "note": payload.note,
    }


async def handle_cancel(payload: CancelTask, ctx: HandlerContext) -> None:
    """Record the command's id in the inbox as dealt with, so that it is skipped on arrival.

    A command that already ran has its own inbox row: then it is too late, and nothing changes.
    """
    await mark_cancelled(ctx.session, str(payload.message_id), str(payload.task_id))


def base_registry() -> HandlerRegistry:
    """A registry with the handlers every service has."""
    registry = HandlerRegistry()
    registry.register(PING.type, handle_ping)
    registry.register(CANCEL_TASK.type, handle_cancel)
    return registry
