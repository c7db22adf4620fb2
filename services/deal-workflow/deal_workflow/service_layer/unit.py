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
from prs_shared.tenancy import organization_scope

SERVICE = "deal-workflow"


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

    @property
    def caller_organization(self) -> str | None:
        """The organization the command acts for (None: a key that may act for any)."""
        return self.ctx.envelope.organization_id

    def scope(self, requested: str | None) -> str | None:
        """The organization a report or process run covers; another one is refused."""
        return organization_scope(self.caller_organization, requested, service=SERVICE)

    async def locked_deal(self, deal_id: str) -> Deal:
        """The caller's deal, locked for this transaction.

        An unknown deal is worth a retry: PRS publishes ``deal.created`` and may queue work on
        the deal at once, and the two travel on different queues. A deal of another organization
        than the caller's is not selected at all (nor locked), so it fails exactly like an
        unknown one — same error, same retries, same end — and nothing tells the caller it
        exists (DESIGN.md §3 rule 8).
        """
        deal = await self.repo.deal(deal_id, lock=True, organization_id=self.caller_organization)
        if deal is None:
            raise TransientError(f"deal {deal_id} is not known (yet) to {SERVICE}")
        return deal


def user_actor(user_id: str | None) -> str:
    return f"user:{user_id}" if user_id else "system:deal-workflow"
