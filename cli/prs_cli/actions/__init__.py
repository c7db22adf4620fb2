"""The actions of ``prs manage-background-tasks``, one module each, dispatched by ``--action``."""

from __future__ import annotations

from collections.abc import Callable

from prs_cli.actions import cleanup, monitor, queue, status, test
from prs_cli.actions.context import Action, ActionContext

ActionFn = Callable[[ActionContext], int]

# Adding an action is one module and one line here.
ACTIONS: dict[Action, ActionFn] = {
    Action.QUEUE: queue.run,
    Action.MONITOR: monitor.run,
    Action.STATUS: status.run,
    Action.TEST: test.run,
    Action.CLEANUP: cleanup.run,
}


def run_action(ctx: ActionContext) -> int:
    """Run the action ``--action`` names and return the exit code."""
    try:
        return ACTIONS[ctx.options.action](ctx)
    finally:
        ctx.close()
