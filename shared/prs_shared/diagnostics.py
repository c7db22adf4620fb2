"""The diagnostic task every service answers."""

from __future__ import annotations

from typing import Any

from prs_shared.messaging.envelope import utcnow
from prs_shared.messaging.handlers import HandlerContext, HandlerRegistry
from prs_shared.messaging.messages import PING, Ping


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


def base_registry() -> HandlerRegistry:
    """A registry with the handlers every service has."""
    registry = HandlerRegistry()
    registry.register(PING.type, handle_ping)
    return registry
