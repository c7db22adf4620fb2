"""One message's unit of work: its transaction, repository, audit log and outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from deal_workflow.adapters.audit_log import AuditLog
from deal_workflow.adapters.repository import Repository
from deal_workflow.dependencies import Dependencies
from deal_workflow.models import Deal
from prs_shared.messaging.errors import TransientError
from prs_shared.messaging.handlers import HandlerContext


@dataclass
class Unit:
    ctx: HandlerContext
    deps: Dependencies
    repo: Repository
    audit: AuditLog

    @classmethod
    def of(cls, ctx: HandlerContext, deps: Dependencies) -> Unit:
        return cls(ctx, deps, Repository(ctx.session), AuditLog(ctx.session, deps.clock))

    def now(self) -> datetime:
        return self.deps.clock.now()

    async def locked_deal(self, deal_id: str) -> Deal:
        """The deal, locked for this transaction.

        An unknown deal is worth a retry: PRS publishes ``deal.created`` and may queue work on
        the deal at once, and the two travel on different queues.
        """
        deal = await self.repo.deal(deal_id, lock=True)
        if deal is None:
            raise TransientError(f"deal {deal_id} is not known (yet) to deal-workflow")
        return deal


def user_actor(user_id: str | None) -> str:
    return f"user:{user_id}" if user_id else "system:deal-workflow"
