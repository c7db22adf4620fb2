"""Builders, an in-memory file store and a handler harness for the deal-workflow tests.

The harness runs a handler the way the runtime does — in one transaction, through the service's
own registry — without the broker, and hands back the result and the staged events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from deal_workflow.bootstrap import handlers
from deal_workflow.dependencies import Dependencies
from prs_shared.db.engine import SessionFactory
from prs_shared.messaging import prs_events as prs
from prs_shared.messaging.catalog import MessageSpec
from prs_shared.messaging.deals import ProcessDealWorkflow, WorkflowAction
from prs_shared.messaging.envelope import Envelope
from prs_shared.messaging.handlers import HandlerContext
from prs_shared.storage import safe_join

NOW = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
ORG = "org-1"
SALESPERSON = "sp-1"


def flat_policy(rate: str = "0.05") -> prs.CommissionPolicy:
    return prs.CommissionPolicy(kind="flat", rate=Decimal(rate))


def tiered_policy(*tiers: tuple[str | None, str]) -> prs.CommissionPolicy:
    """``tiered_policy(("10000", "0.05"), (None, "0.08"))``."""
    return prs.CommissionPolicy(
        kind="tiered",
        tiers=[
            prs.CommissionTier(up_to=None if up is None else Decimal(up), rate=Decimal(rate))
            for up, rate in tiers
        ],
    )


def organization(
    organization_id: str = ORG,
    *,
    currency: str = "USD",
    policy: prs.CommissionPolicy | None = None,
    name: str = "Acme Receivables",
    version: int = 1,
) -> prs.Organization:
    return prs.Organization(
        organization_id=organization_id,
        name=name,
        currency=currency,
        commission_policy=policy or flat_policy(),
        version=version,
    )


def user(
    user_id: str = SALESPERSON,
    organization_id: str = ORG,
    *,
    roles: Sequence[str] = ("salesperson",),
    active: bool = True,
    version: int = 1,
) -> prs.User:
    return prs.User(
        user_id=user_id,
        organization_id=organization_id,
        email=f"{user_id}@example.com",
        full_name=f"User {user_id}",
        roles=[prs.UserRole(r) for r in roles],
        active=active,
        version=version,
    )


def deal(
    deal_id: str = "deal-1",
    organization_id: str = ORG,
    *,
    client_id: str | None = "client-1",
    client_name: str = "Globex Corporation",
    value: str = "1000.00",
    currency: str = "USD",
    salesperson_id: str | None = SALESPERSON,
    due_date: date | None = date(2026, 12, 31),
    attachment_ids: Sequence[str] = (),
    created_at: datetime = NOW - timedelta(days=2),
    version: int = 1,
) -> prs.Deal:
    return prs.Deal(
        deal_id=deal_id,
        organization_id=organization_id,
        client_id=client_id,
        client_name=client_name,
        value=Decimal(value),
        currency=currency,
        salesperson_id=salesperson_id,
        due_date=due_date,
        attachment_ids=list(attachment_ids),
        created_at=created_at,
        version=version,
    )


def payment(
    payment_id: str,
    deal_id: str = "deal-1",
    amount: str = "100.00",
    *,
    organization_id: str = ORG,
    currency: str = "USD",
    received_at: datetime = NOW - timedelta(hours=1),
) -> prs.Payment:
    return prs.Payment(
        payment_id=payment_id,
        deal_id=deal_id,
        organization_id=organization_id,
        amount=Decimal(amount),
        currency=currency,
        received_at=received_at,
    )


def workflow(
    deal_id: str, action: WorkflowAction, user_id: str | None = "admin-1"
) -> ProcessDealWorkflow:
    return ProcessDealWorkflow(deal_id=deal_id, workflow_action=action, user_id=user_id)


class MemoryFileStore:
    """The file store Protocol in memory, refusing the keys the real one refuses."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self._root = Path("/memory-store")

    def _check(self, key: str) -> str:
        safe_join(self._root, key)
        return key

    def put(self, key: str, data: bytes) -> None:
        self.files[self._check(key)] = data

    def get(self, key: str) -> bytes:
        return self.files[self._check(key)]

    def path(self, key: str) -> Path:
        return self._root / self._check(key)

    def exists(self, key: str) -> bool:
        return key in self.files

    def delete(self, key: str) -> None:
        self.files.pop(key, None)


@dataclass
class Handled:
    result: dict[str, Any] | None
    events: list[Envelope] = field(default_factory=list)

    def of(self, spec: MessageSpec) -> list[dict[str, Any]]:
        """Payloads of the staged events of one type."""
        return [e.payload for e in self.events if e.type == spec.type]


class Harness:
    """Runs the service's handlers in one transaction each, as the runtime would."""

    def __init__(self, sessions: SessionFactory, deps: Dependencies) -> None:
        self.sessions = sessions
        self.deps = deps
        self.registry = handlers(deps)

    async def handle(
        self, spec: MessageSpec, payload: BaseModel, *, organization_id: str | None = None
    ) -> Handled:
        handler = self.registry.get(spec.type)
        assert handler is not None, f"no handler for {spec.type}"
        envelope = Envelope(
            type=spec.type,
            payload=payload.model_dump(mode="json"),
            organization_id=organization_id,
        )
        model = spec.payload.model_validate(envelope.payload)
        async with self.sessions() as session, session.begin():
            ctx = HandlerContext(
                envelope=envelope,
                session=session,
                service="deal-workflow",
                worker="harness",
                attempt=1,
                queue=spec.queue or "deal-workflow.events",
            )
            result = await handler(model, ctx)
        return Handled(result, [staged for staged, _ in ctx.staged])

    async def given(self, *facts: tuple[MessageSpec, BaseModel]) -> None:
        """Feed PRS events into the replica."""
        for spec, payload in facts:
            await self.handle(spec, payload)
