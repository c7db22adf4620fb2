"""``--action=monitor``: watch queues and workers."""

from __future__ import annotations

from prs_cli.actions.context import ActionContext, not_available


def run(ctx: ActionContext) -> int:
    """Not available yet: the gateway has no monitoring endpoint in this version."""
    raise not_available(ctx.options.action)
