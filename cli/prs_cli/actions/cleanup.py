"""``--action=cleanup``: remove finished tasks past their retention."""

from __future__ import annotations

from prs_cli.actions.context import ActionContext, not_available


def run(ctx: ActionContext) -> int:
    """Not available yet: the gateway has no clean-up endpoint in this version."""
    raise not_available(ctx.options.action)
